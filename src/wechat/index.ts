/**
 * The WeChat client: web authorization, account access tokens, server API, error families.
 * It knows nothing of bindings, merchants or flows (STYLE.md rule 7).
 */
export * from './errors.ts';
export { createWeChatHttp, parseJsonLossless, withBackoff } from './http.ts';
export type { FetchLike, WeChatHttp, WeChatRequest, BackoffOptions } from './http.ts';
export * from './web-auth.ts';
export * from './access-token.ts';
export * from './api.ts';
export type { CustomMessage, TemplateMessage, SubscribeMessage, MessagesApi } from './api-messages.ts';
export type { FollowerInfo, FollowerPage, Lang, UsersApi } from './api-users.ts';
export { MAX_QR_EXPIRE_SECONDS } from './api-qrcode.ts';
export type { QrCode, QrCodeRequest, QrCodeApi } from './api-qrcode.ts';
// Push side (another module owner): signatures, message crypto, XML, inbound messages, replies.
export * from './crypto.ts';
export * from './xml.ts';
export * from './messages.ts';
export * from './replies.ts';
