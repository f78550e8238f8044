/** JSON views of sandbox state for the control API (Maps and bigints do not stringify). */
import type { SandboxApp } from './state.ts';

/** bigint (MsgId, MsgID) as a decimal string; Maps as plain objects. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Map) return Object.fromEntries(v);
    return v;
  });
}

export function summarizeApp(app: SandboxApp): Record<string, unknown> {
  return { ...app, templates: Object.fromEntries(app.templates) };
}
