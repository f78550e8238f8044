/**
 * WeChat's numbers the sandbox enforces, from wechat-protocol.md §1–§9 unless noted.
 * Every one can be overridden (tests shrink them; `PATCH /control/limits`).
 */
export interface SandboxLimits {
  tokenTtlSec: number; // §2.1 expires_in
  tokenGraceSec: number; // §2.3 a superseded cgi-bin/token keeps working this long
  tokenDailyLimit: number; // §9 cgi-bin/token 2,000/day
  stableTokenDailyLimit: number; // §9 500,000/day
  stableRotateBeforeSec: number; // §2.2 rotation 5 minutes before expiry
  stableForceDailyLimit: number; // §2.2 force_refresh 20/day
  stableForceMinIntervalSec: number; // §2.2 forced calls >= 30 s apart
  codeTtlSec: number; // §1.4 5 minutes
  websiteCodeTtlSec: number; // §1.4 the website QR login's code: 10 minutes
  qrLoginTtlSec: number; // sandbox choice: how long a qrconnect QR waits for a scan (undocumented)
  userTokenTtlSec: number; // §1.5 7200
  refreshTokenTtlSec: number; // §1.6 30 days, not extended by refreshing (§13.10)
  csMessageQuota: number; // §3.2 5 messages …
  csMessageWindowSec: number; // … for 48 h after a user message
  csEventQuota: number; // §3.2 3 messages …
  csEventWindowSec: number; // … for 1 min after click/follow/scan
  customSendDailyLimit: number; // §9
  typingInteractionSec: number; // §3.4 30 s
  typingDurationSec: number; // §3.4 15 s
  templateDailyLimit: number; // §9 100,000/day
  templateDedupSec: number; // §4.1 client_msg_id effective 10 minutes
  templateFinishDelayMs: number; // delay before the TEMPLATESENDJOBFINISH push
  userGetPageSize: number; // §7.3 10,000 per page
  userGetDailyLimit: number; // §9 500/day
  batchGetMax: number; // §7.2 100 per call
  qrDefaultExpireSec: number; // temporary QR default lifetime
  qrMaxExpireSec: number; // temporary QR max lifetime (30 days)
  logCap: number; // sandbox only: newest entries kept in each log (calls, pushes, messages)
}

export const defaultLimits: Readonly<SandboxLimits> = Object.freeze({
  tokenTtlSec: 7200,
  tokenGraceSec: 300,
  tokenDailyLimit: 2000,
  stableTokenDailyLimit: 500_000,
  stableRotateBeforeSec: 300,
  stableForceDailyLimit: 20,
  stableForceMinIntervalSec: 30,
  codeTtlSec: 300,
  websiteCodeTtlSec: 600,
  qrLoginTtlSec: 300,
  userTokenTtlSec: 7200,
  refreshTokenTtlSec: 30 * 86_400,
  csMessageQuota: 5,
  csMessageWindowSec: 48 * 3600,
  csEventQuota: 3,
  csEventWindowSec: 60,
  customSendDailyLimit: 500_000,
  typingInteractionSec: 30,
  typingDurationSec: 15,
  templateDailyLimit: 100_000,
  templateDedupSec: 600,
  templateFinishDelayMs: 500,
  userGetPageSize: 10_000,
  userGetDailyLimit: 500,
  batchGetMax: 100,
  qrDefaultExpireSec: 60,
  qrMaxExpireSec: 2_592_000,
  logCap: 50_000,
});
