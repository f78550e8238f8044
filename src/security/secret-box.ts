/**
 * Secrets and private keys at rest (DESIGN.md: encrypted with BRIDGE_SECRET_KEY).
 * AES-256-GCM with a fresh 96-bit IV per value and a purpose string bound as AAD, so a
 * ciphertext moved to another column or row fails to open. Sub-keys for other uses
 * (cookies, CSRF, pairwise subjects) are derived with HKDF, never the master key itself.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export interface SecretBox {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
  /** A 32-byte sub-key for one purpose, e.g. 'cookies', 'pairwise-sub'. */
  deriveKey(purpose: string): Buffer;
}

export function createSecretBox(masterKey: Buffer): SecretBox {
  if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `wxbridge:${purpose}`, 32));
  const encKey = derive('secret-box');
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', encKey, iv);
      c.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final(), c.getAuthTag()]);
      return `${VERSION}.${iv.toString('base64url')}.${ct.toString('base64url')}`;
    },
    open(sealed, context) {
      const [v, ivB64, ctB64] = sealed.split('.');
      if (v !== VERSION || !ivB64 || !ctB64) throw new Error('not a sealed value');
      const iv = Buffer.from(ivB64, 'base64url');
      const data = Buffer.from(ctB64, 'base64url');
      if (iv.length !== 12 || data.length < 16) throw new Error('not a sealed value');
      const d = createDecipheriv('aes-256-gcm', encKey, iv);
      d.setAAD(Buffer.from(context, 'utf8'));
      d.setAuthTag(data.subarray(data.length - 16));
      return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString('utf8');
    },
    deriveKey: derive,
  };
}
