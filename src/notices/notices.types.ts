/**
 * The notices domain's types: what the service, the dispatcher and the routes share, and
 * the ports the feature needs from others (WeChat sends, the customer-service window).
 */
import type { MessagesApi } from '../wechat/api-messages.ts';

export type Channel = 'template' | 'customer-service';
export type ChannelChoice = 'auto' | Channel;
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'delivered' | 'failed' | 'unknown';

/** The two WeChat calls the dispatcher makes (wechat-protocol.md §3.1, §4.1). */
export type NoticeSender = Pick<MessagesApi, 'customSend' | 'templateSend'>;

/**
 * The customer-service window as the inbox keeps it (`src/inbox/cs-window.ts`): the inbox
 * records each interaction; `tryConsume` takes one message of the user's remaining quota
 * (wechat-protocol.md §3.2) and says whether a customer-service send is allowed now.
 */
export interface CsWindowPort {
  tryConsume(appId: string, openid: string): Promise<boolean>;
}

export type Recipient =
  | { account: string }
  | { binding: string }
  | { sub: string }
  | { tag: string }
  | { segment: 'all' | 'subscribed' };

/** A validated `POST /api/v1/notices` body. */
export interface NoticeRequest {
  to: Recipient;
  template?: string | undefined;
  data: Record<string, string | number>;
  url?: string | undefined;
  channel: ChannelChoice;
  text?: string | undefined;
}

export interface DeliveryRef {
  id: string;
  bindingId: string | null;
  account: string | null;
}

/** The 202 answer; identical for every replay of the same Idempotency-Key and body. */
export interface NoticeAccepted {
  id: string;
  createdAt: string;
  deliveries: DeliveryRef[];
}

export interface DeliveryView extends DeliveryRef {
  status: DeliveryStatus;
  channel: Channel | null;
  attempts: number;
  errcode: number | null;
  error: string | null;
  sentAt: string | null;
  finishedAt: string | null;
}

export interface NoticeView {
  id: string;
  template: string | null;
  channel: ChannelChoice;
  createdAt: string;
  counts: Partial<Record<DeliveryStatus, number>>;
  deliveries: DeliveryView[];
  /** Cursor for the next page of deliveries (`?after=`), when there is one. */
  next: string | null;
}

/** A delivery as a worker holds it under its lease. */
export interface ClaimedDelivery {
  id: string;
  noticeId: string;
  merchantId: string;
  identityId: string;
  appId: string;
  openid: string;
  /** Attempts made before this claim. */
  attempts: number;
  ambiguousSince: number | null;
  leaseId: string;
  leaseUntil: number;
  notice: {
    template: string | null;
    channel: ChannelChoice;
    data: Record<string, string | number>;
    url: string | null;
    text: string | null;
  };
}

/** What one processing of a delivery came to; written back in batches. */
export type Outcome =
  | { status: 'delivered'; channel: 'customer-service' }
  | { status: 'sent'; channel: 'template'; msgid: string }
  | { status: 'failed'; channel: Channel | null; errcode: number | null; error: string; attempted: boolean }
  | { status: 'unknown'; channel: Channel; error: string; attempted: boolean }
  | {
      status: 'queued';
      nextAt: number;
      attempted: boolean;
      errcode?: number | null;
      error?: string | null;
      /** Set when a template send of this attempt may have reached WeChat. */
      ambiguousSince?: number | null;
    };
