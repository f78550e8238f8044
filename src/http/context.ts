/**
 * What the kernel puts on every request's state, typed once for all routes.
 */
import type { Logger } from 'pino';
import type { Locale } from './i18n.ts';

export interface RequestState {
  requestId: string;
  log: Logger;
  locale: Locale;
  rawBody?: Buffer;
  [key: string]: unknown;
}

declare module 'koa' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging needs the empty body
  interface DefaultState extends RequestState {}
}
