/**
 * What the account says by itself (built-in replies), Chinese first with a short English
 * line, as WeChat users read zh-CN. Links are `<a href>` tags, which WeChat renders in text
 * messages (wechat-protocol.md §3.1); names from config are escaped for that markup.
 */
export interface MerchantLink {
  name: string;
  url: string;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

export const anchor = (l: MerchantLink): string => `<a href="${escapeHtml(l.url)}">${escapeHtml(l.name)}</a>`;

export const texts = {
  pleaseType: '抱歉，没有听清您的语音，请直接输入文字。\nSorry, I could not make out that voice message — please type it.',
  unsupported: '暂时只能处理文字消息，请直接输入文字。\nPlease send your request as text.',
  busy: '服务暂时繁忙，请稍后再试。\nThe service is busy; please try again in a moment.',
  unknown: '抱歉，没有理解您的意思。\nSorry, I did not understand that.',
  /** Why a binding-code QR scan linked nothing (linking's RedeemResult reasons). */
  qrRefused: {
    invalid_code: '该二维码已失效或已被使用，请重新获取。\nThis QR code has expired or was already used; please ask for a new one.',
    conflict: '该账户已绑定其他微信用户，请联系客服。\nThis account is already linked to another WeChat user; please contact us.',
    limit_reached: '您绑定的账户已达上限。\nYou have linked the maximum number of accounts.',
    too_many: '尝试次数过多，请一小时后再试。\nToo many attempts; please try again in an hour.',
  },

  help(keywords: string[]): string {
    const extra = keywords.length ? `\n也可以发送：${keywords.join('、')}` : '';
    return `发送「绑定」绑定账户，「我的账户」查看已绑定的账户，「帮助」查看本说明。${extra}\nSend "bind" to link an account, "my accounts" to see linked accounts, "help" for this message.`;
  },

  welcome(help: string): string {
    return `感谢关注！Thanks for following!\n${help}`;
  },

  linkPrompt(links: MerchantLink[]): string {
    return `请先绑定账户 Please link your account first:\n${links.map(anchor).join('\n')}`;
  },

  bind(links: MerchantLink[]): string {
    return `点击绑定账户 Tap to link an account:\n${links.map(anchor).join('\n')}`;
  },

  myAccounts(rows: { link: MerchantLink; accounts: string[] }[]): string {
    const lines = rows.map((r) => `${anchor(r.link)}：${r.accounts.length ? r.accounts.join('、') : '未绑定 none'}`);
    return `已绑定的账户 Linked accounts:\n${lines.join('\n')}`;
  },

  qrBound(merchantName: string, display: string | null): string {
    const what = display ? `${merchantName} ${display}` : merchantName;
    return `绑定成功：${what}\nLinked: ${what}`;
  },
};
