/**
 * zod at the HTTP trust boundary. `parseInput` validates one part of a request and
 * turns a failure into the error family of the endpoint: AppError('request.invalid')
 * for the merchant API and pages, OAuthError('invalid_request') for /oauth2.
 * Schemas should be `.strict()` so unknown fields are refused, not ignored.
 */
import type { z } from 'zod';
import { AppError, OAuthError } from './errors.ts';

export type ErrorFamily = 'app' | 'oauth';

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, family: ErrorFamily = 'app', what = 'request'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const where = first?.path.length ? first.path.join('.') : what;
  const message = first ? `${where}: ${first.message}` : `invalid ${what}`;
  if (family === 'oauth') throw new OAuthError('invalid_request', message);
  throw new AppError('request.invalid', message, { issues: r.error.issues.slice(0, 10) });
}
