/**
 * pino with secrets redacted (ASVS 16.2.5; SECURITY.md A7): never appsecret, AES keys,
 * tokens, codes, raw state, JWTs, private keys, passwords. Redaction is by key name at
 * any of the depths we log; features also avoid putting such values in logs at all.
 */
import { pino, type Logger } from 'pino';

const SECRET_KEYS = [
  'appSecret', 'secret', 'clientSecret', 'client_secret', 'password', 'token', 'accessToken', 'access_token',
  'refreshToken', 'refresh_token', 'idToken', 'id_token', 'code', 'state', 'encodingAesKey', 'privateKey',
  'private_key', 'authorization', 'cookie', 'set-cookie', 'echostr', 'totp', 'otp', 'jwt', 'assertion',
  'client_assertion', 'code_verifier', 'x-csrf-token', 'fields', 'values',
];

const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]);

export function createLogger(level: string, opts: { destination?: pino.DestinationStream; base?: Record<string, unknown> } = {}): Logger {
  return pino(
    {
      level,
      base: opts.base ?? { service: 'wxbridge' },
      redact: { paths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

export type { Logger };
