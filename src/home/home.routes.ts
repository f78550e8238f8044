/**
 * `/`: in demo mode, the map of the whole journey a newcomer clicks through; in
 * production, a short page naming the service and its discovery document.
 */
import Router from '@koa/router';
import type { AppConfig } from '../config/index.ts';
import type { Feature } from '../http/feature.ts';
import { translator, type Messages } from '../http/i18n.ts';
import { renderPage, type Views } from '../http/views.ts';

type Key = 'title' | 'lead' | 'step1' | 'step1b' | 'step2' | 'step2b' | 'step3' | 'step3b' | 'step4' | 'step4b' | 'tools' | 'prodLead';

const text: Messages<Key> = {
  'zh-CN': {
    title: 'wxbridge 演示',
    lead: '微信服务号账户绑定桥：微信网页授权、绑定商户账户、签发 JWT、个性化回复与服务通知。演示模式下，内置沙箱代替微信。',
    step1: '以商户 H5 身份登录',
    step1b: '演示商户应用通过 OAuth 2.0 + PKCE 跳转到 wxbridge，再到沙箱“微信”授权。',
    step2: '选择一个模拟微信用户',
    step2b: '在沙箱授权页创建或选择用户，同意授权。',
    step3: '绑定一张演示卡',
    step3b: '按页面提示证明账户所有权（验证接口、商户登录或绑定码）。',
    step4: '查看令牌与通知',
    step4b: '回到商户应用查看签发的 JWT；在沙箱“手机”里查看收到的消息与服务通知。',
    tools: '工具',
    prodLead: '微信服务号账户绑定与身份桥。',
  },
  en: {
    title: 'wxbridge demo',
    lead: 'An account-linking identity bridge for WeChat Official Accounts: web authorization, linking merchant accounts, signed JWTs, personalized replies and service notices. In demo mode a built-in sandbox stands in for WeChat.',
    step1: 'Sign in as the merchant H5 app',
    step1b: 'The demo merchant app sends you through OAuth 2.0 + PKCE to wxbridge, then to the sandbox "WeChat" to authorize.',
    step2: 'Pick a simulated WeChat user',
    step2b: 'On the sandbox authorize page, create or pick a user and allow.',
    step3: 'Link a demo card',
    step3b: 'Prove you own the account as the page asks (verification API, merchant login, or binding code).',
    step4: 'See the token and the notices',
    step4b: 'Back in the merchant app, see the JWT it received; in the sandbox "phone", see messages and service notices.',
    tools: 'Tools',
    prodLead: 'Account-linking identity bridge for WeChat Official Accounts.',
  },
};

export function createHomeFeature(deps: { config: AppConfig; views: Views }): Feature {
  const router = new Router();
  router.get('/', (ctx) => {
    const t = translator(text, ctx.state.locale);
    renderPage(ctx, deps.views, 'home/index', {
      title: deps.config.mode === 'demo' ? t('title') : 'wxbridge',
      demo: deps.config.mode === 'demo',
      sandbox: deps.config.sandbox.enabled,
      merchants: deps.config.merchants.map((m) => ({ id: m.id, name: m.name })),
      t: Object.fromEntries((Object.keys(text.en) as Key[]).map((k) => [k, t(k)])),
    });
  });
  return { name: 'home', routes: router };
}
