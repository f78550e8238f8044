/**
 * The one place errors become responses (STYLE.md rule 4). Protocol endpoints get RFC
 * JSON (`{error, error_description}`, RFC 6749 §5.2 / RFC 6750 §3); browsers get a
 * rendered page with the request id; nothing internal (stack, SQL, upstream bodies)
 * is ever sent. 5xx are logged with detail, the rest at info without secrets.
 */
import type { Context, Middleware } from 'koa';
import { AppError, DependencyUnavailableError, OAuthError } from './errors.ts';
import { translator, type Messages } from './i18n.ts';
import { renderPage, type Views } from './views.ts';

interface Rendered {
  status: number;
  error: string;
  description: string;
  headers?: Record<string, string>;
}

const PROTOCOL_PREFIXES = ['/oauth2/', '/.well-known/', '/api/', '/wechat/push/', '/sandbox/sns/', '/sandbox/cgi-bin/'];

const pageText: Messages<'title' | 'retry' | 'home' | `s${400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 502 | 503}`> = {
  'zh-CN': {
    title: '出错了',
    retry: '请稍后重试。',
    home: '返回',
    s400: '请求无效。',
    s401: '请先登录。',
    s403: '没有权限访问。',
    s404: '页面不存在。',
    s409: '操作与当前状态冲突。',
    s413: '提交的内容过大。',
    s429: '操作过于频繁，请稍后再试。',
    s500: '服务器内部错误。',
    s502: '上游服务出错。',
    s503: '服务暂时不可用。',
  },
  en: {
    title: 'Something went wrong',
    retry: 'Please try again in a moment.',
    home: 'Back',
    s400: 'The request is not valid.',
    s401: 'Please sign in first.',
    s403: 'You do not have access.',
    s404: 'This page does not exist.',
    s409: 'That conflicts with the current state.',
    s413: 'What you sent is too large.',
    s429: 'Too many attempts; please wait a moment.',
    s500: 'Internal error.',
    s502: 'An upstream service failed.',
    s503: 'The service is temporarily unavailable.',
  },
};

export function classify(err: unknown, ctx: Context): Rendered {
  if (err instanceof OAuthError) {
    const headers: Record<string, string> = {};
    if (err.wwwAuthenticate) headers['WWW-Authenticate'] = err.wwwAuthenticate;
    else if (err.error === 'invalid_client' && ctx.get('authorization')) headers['WWW-Authenticate'] = 'Basic realm="wxbridge"';
    if (err.status === 503) headers['Retry-After'] = '1';
    return { status: err.status, error: err.error, description: err.description ?? err.error, headers };
  }
  if (err instanceof AppError) return { status: err.status, error: err.code, description: err.publicMessage ?? pageText.en[`s${err.status}` as 's400'] ?? err.code };
  if (err instanceof DependencyUnavailableError)
    return {
      status: 503,
      error: ctx.path.startsWith('/oauth2/') ? 'temporarily_unavailable' : 'dependency.unavailable',
      description: 'a dependency is unavailable; retry shortly',
      headers: { 'Retry-After': '1' },
    };
  const status = typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : 500;
  const expose = (err as { expose?: boolean })?.expose === true && status < 500;
  if (status >= 400 && status < 600 && status !== 500)
    return { status, error: status === 404 ? 'request.not_found' : `http.${status}`, description: expose ? (err as Error).message : `HTTP ${status}` };
  return { status: 500, error: ctx.path.startsWith('/oauth2/') ? 'server_error' : 'internal', description: 'internal error' };
}

function wantsHtml(ctx: Context): boolean {
  if (PROTOCOL_PREFIXES.some((p) => ctx.path.startsWith(p))) return false;
  return ctx.accepts('json', 'html') === 'html';
}

export function errorHandler(deps: { views: Views }): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('request.not_found');
    } catch (err) {
      const r = classify(err, ctx);
      const log = ctx.state.log;
      if (r.status >= 500) log?.error({ err, errorCode: r.error }, 'request failed');
      else log?.info({ errorCode: r.error, status: r.status, detail: (err as AppError).detail }, 'request refused');
      ctx.status = r.status;
      for (const [k, v] of Object.entries(r.headers ?? {})) ctx.set(k, v);
      ctx.set('Cache-Control', 'no-store');
      if (wantsHtml(ctx) && renderErrorPage(ctx, deps.views, r, err)) {
        return;
      }
      ctx.body = { error: r.error, error_description: r.description };
    }
  };
}

function renderErrorPage(ctx: Context, views: Views, r: Rendered, err: unknown): boolean {
  try {
    const t = translator(pageText, ctx.state.locale ?? 'zh-CN');
    const key = `s${r.status}` as `s${400 | 500}`;
    const message = (r.status < 500 && err instanceof AppError && err.publicMessage) || t(key) || t('s500');
    renderPage(ctx, views, 'errors/error', { title: t('title'), status: r.status, message, hint: r.status >= 500 ? t('retry') : '' }, r.status);
    return true;
  } catch (renderErr) {
    ctx.state.log?.error({ err: renderErr }, 'error page failed to render');
    return false;
  }
}
