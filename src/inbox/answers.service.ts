/**
 * The personalized answer to a text, a recognized voice message or a menu click
 * (DESIGN.md "Intents"): a built-in intent (bind, my accounts, help) answered here, or a
 * merchant intent answered by the merchant's intents endpoint for the user's linked account.
 * An unlinked user asking for an account intent gets the link prompt
 * (`${publicUrl}/link/<merchant>`). Transport-free; never throws for a merchant's failure —
 * the user gets a polite "busy" instead.
 */
import type { Logger } from 'pino';
import type { MerchantConfig, OfficialAccountConfig } from '../config/index.ts';
import type { Binding, LinkingService } from '../linking/types.ts';
import type { IntentCall, IntentsClient } from './intents-client.ts';
import { text, type Reply } from './reply.ts';
import type { IntentRouter, Route } from './routing.ts';
import { texts, type MerchantLink } from './texts.ts';

/** What the inbox needs of the linking feature (src/linking/types.ts). */
export type InboxLinking = Pick<LinkingService, 'findIdentity' | 'listBindings' | 'subjectFor' | 'findBySubject'>;

export interface Who {
  account: OfficialAccountConfig;
  openid: string;
  /** The push's de-duplication key: the idempotency id of any call it makes. */
  dedupeKey: string;
}

export interface Answers {
  forText(who: Who, message: string): Promise<Reply | null>;
  forMenu(who: Who, key: string): Promise<Reply | null>;
  /** VIEW menus open a page and grant no reply window: the merchant is told, its answer dropped. */
  notifyView(who: Who, url: string): Promise<void>;
  welcome(who: Who): Reply;
}

interface Linked {
  binding: Binding;
  sub: string;
  location: IntentCall['location'];
}

export function createAnswers(o: { router: IntentRouter; intents: IntentsClient; linking?: InboxLinking; publicUrl: string; log: Logger }): Answers {
  const { router } = o;
  const linkOf = (m: MerchantConfig): MerchantLink => ({ name: m.name, url: `${o.publicUrl}/link/${encodeURIComponent(m.id)}` });
  const merchantsFor = (who: Who, route: { merchant?: MerchantConfig }) => (route.merchant ? [route.merchant] : router.merchantsOf(who.account.id));

  async function activeBindings(who: Who, m: MerchantConfig): Promise<{ identityId: string; location: Linked['location']; bindings: Binding[] } | null> {
    if (!o.linking) return null;
    const identity = await o.linking.findIdentity(who.account.appId, who.openid);
    if (!identity) return null;
    const bindings = await o.linking.listBindings({ merchantId: m.id, identityId: identity.id, status: 'active' });
    return { identityId: identity.id, location: identity.lastLocation ?? undefined, bindings };
  }

  async function linked(who: Who, m: MerchantConfig): Promise<Linked | null> {
    const found = await activeBindings(who, m);
    const binding = found?.bindings.find((b) => b.isDefault) ?? found?.bindings[0];
    if (!found || !binding || !o.linking) return null;
    return { binding, sub: await o.linking.subjectFor(found.identityId, m.id), location: found.location };
  }

  function help(who: Who): string {
    return texts.help(router.keywordsOf(who.account.id));
  }

  async function builtin(who: Who, route: Extract<Route, { kind: 'builtin' }>): Promise<Reply> {
    const merchants = merchantsFor(who, route);
    if (route.name === 'help') return text(help(who));
    if (route.name === 'bind') return text(texts.bind(merchants.map(linkOf)));
    const rows = await Promise.all(
      merchants.map(async (m) => ({
        link: linkOf(m),
        accounts: ((await activeBindings(who, m))?.bindings ?? []).map((b) => b.accountDisplay ?? b.accountId),
      })),
    );
    if (rows.every((r) => r.accounts.length === 0)) return text(texts.linkPrompt(merchants.map(linkOf)));
    return text(texts.myAccounts(rows));
  }

  async function intent(who: Who, route: Extract<Route, { kind: 'intent' }>, message: string): Promise<Reply | null> {
    const link = await linked(who, route.merchant);
    if (!link) return text(texts.linkPrompt([linkOf(route.merchant)]));
    const call: IntentCall = {
      intent: route.intent,
      text: message,
      account: link.binding.accountId,
      binding_id: link.binding.id,
      sub: link.sub,
      ...(link.location ? { location: link.location } : {}),
    };
    try {
      return await o.intents.call(route.merchant, call, who.dedupeKey);
    } catch (err) {
      o.log.warn({ err, merchant: route.merchant.id, intent: route.intent }, 'intents endpoint failed');
      return text(texts.busy);
    }
  }

  async function answer(who: Who, route: Route, message: string): Promise<Reply | null> {
    try {
      if (route.kind === 'builtin') return await builtin(who, route);
      if (route.kind === 'intent') return await intent(who, route, message);
      return message ? text(`${texts.unknown}\n${help(who)}`) : null;
    } catch (err) {
      o.log.error({ err, account: who.account.id }, 'answer failed');
      return text(texts.busy);
    }
  }

  return {
    forText: (who, message) => answer(who, router.byText(who.account.id, message), message),
    forMenu: (who, key) => answer(who, router.byMenuKey(who.account.id, key), ''),
    async notifyView(who, url) {
      const route = router.byMenuKey(who.account.id, url);
      if (route.kind === 'intent') await intent(who, route, url);
    },
    welcome: (who) => text(texts.welcome(help(who))),
  };
}
