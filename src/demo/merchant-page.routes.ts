/**
 * `GET /demo/merchant`: the demo merchant system's cheat sheet for a newcomer — which cards
 * and customers exist, the SMS code, the sign-in password — with links into the journey.
 */
import Router from '@koa/router';
import type { AppConfig } from '../config/index.ts';
import { translator, type Messages } from '../http/i18n.ts';
import { renderPage, type Views } from '../http/views.ts';
import { DEMO_CUSTOMERS, DEMO_PASSWORD, DEMO_SMS_CODE, FROZEN_CARD } from './demo-bank.ts';

type Key = 'title' | 'lead' | 'cards' | 'sms' | 'idp' | 'frozen' | 'power' | 'start';
const text: Messages<Key> = {
  'zh-CN': {
    title: '演示商户系统',
    lead: '这是演示用的“银行”和“电力公司”。用下面的数据绑定账户。',
    cards: '演示信用卡（任何以 6222 开头的 16 位卡号都可用）',
    sms: '短信验证码总是',
    idp: '银行登录（OIDC）：用户名如下，密码',
    frozen: '冻结卡（总被拒绝）',
    power: '电力户号：任何以 88 开头的 10 位数字，如 8800001234',
    start: '开始绑定',
  },
  en: {
    title: 'Demo merchant system',
    lead: 'A demo "bank" and "power company". Use these to link accounts.',
    cards: 'Demo cards (any 16-digit number starting 6222 works)',
    sms: 'The SMS code is always',
    idp: 'Bank sign-in (OIDC): these usernames, password',
    frozen: 'Frozen card (always refused)',
    power: 'Power accounts: any 10 digits starting 88, e.g. 8800001234',
    start: 'Start linking',
  },
};

const spaced = (card: string) => card.replace(/(\d{4})(?=\d)/g, '$1 ');

export function createDemoMerchantPage(deps: { config: Pick<AppConfig, 'merchants'>; views: Views }): Router {
  const router = new Router();
  router.get('/demo/merchant', (ctx) => {
    const t = translator(text, ctx.state.locale);
    renderPage(ctx, deps.views, 'demo/merchant', {
      title: t('title'),
      css: 'link',
      bodyClass: 'link',
      t,
      customers: DEMO_CUSTOMERS.map((c) => ({ username: c.username, name: c.name, card: spaced(c.card) })),
      frozen: spaced(FROZEN_CARD),
      sms: DEMO_SMS_CODE,
      password: DEMO_PASSWORD,
      merchants: deps.config.merchants.map((m) => ({ name: m.name, href: `/link/${m.id}` })),
    });
  });
  return router;
}
