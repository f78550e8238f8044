/**
 * Requests to merchant-configured URLs (intents, webhooks, the verify API, a merchant's OpenID
 * Provider) go only where the operator allows (ASVS 5.2.6, SSRF). Merchant URLs can be set in
 * the admin UI by admins scoped to one merchant: without this, such an admin could make the
 * bridge call its own network (Redis on 127.0.0.1:6379, a cloud metadata endpoint at
 * 169.254.169.254, an internal admin API) and read the answer back through an intent reply.
 *
 * The rule is checked where it cannot be raced: on every address the connection is about to
 * use, in the socket's DNS lookup, so a name that resolves to a public address when checked
 * and to a private one when connecting (DNS rebinding) is still refused. A URL with a literal
 * IP address never reaches a lookup and is checked before the request.
 *
 * Allowed: public unicast addresses. Refused unless `allowPrivateNetworks` (or the host is
 * listed in `allowHosts`): loopback, private (RFC 1918, ULA), link-local, carrier-grade NAT,
 * unspecified, multicast, reserved and documentation ranges, and IPv4 inside IPv6 (mapped,
 * NAT64) when the embedded address is one of those.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent } from 'undici';

export interface OutboundPolicy {
  /** Allow private, loopback and link-local destinations (demo mode; merchants on the same private network). */
  allowPrivateNetworks: boolean;
  /** Host names or IP addresses allowed whatever they resolve to (exact, case-insensitive). */
  allowHosts: readonly string[];
}

/** A destination the policy refuses; the message names the host, the address and the setting that would allow it. */
export class OutboundRefusedError extends Error {
  readonly code = 'ERR_OUTBOUND_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`outbound request to ${host} refused: ${address} is not a public address (allow it with outbound.allowPrivateNetworks or outbound.allowHosts)`);
    this.name = 'OutboundRefusedError';
  }
}

const NON_PUBLIC_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay (deprecated)
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const NON_PUBLIC_V6: readonly [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [net, prefix] of NON_PUBLIC_V4) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of NON_PUBLIC_V6) blocked.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address carried inside an IPv6 one (::ffff:a.b.c.d mapped, 64:ff9b::/96 NAT64, ::a.b.c.d compatible), if any. */
function embeddedV4(ip6: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip6);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip6);
  if (!hex) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether `ip` (v4 or v6, no brackets) is a public unicast address. */
export function isPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return !blocked.check(ip, 'ipv4');
  if (family !== 6) return false;
  const v4 = embeddedV4(ip);
  if (v4 !== undefined) return isPublicAddress(v4);
  return !blocked.check(ip, 'ipv6');
}

/** A URL's host as addresses and allow-lists compare it: lowercase, IPv6 without brackets. */
export const bareHost = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();

/** The first of `host`'s addresses the policy refuses, if any: the one rule every check applies. */
export function refusedAddress(host: string, addresses: readonly string[], policy: OutboundPolicy): string | undefined {
  if (policy.allowPrivateNetworks) return undefined;
  const allowed = policy.allowHosts.map(bareHost);
  if (allowed.includes(bareHost(host))) return undefined;
  return addresses.find((a) => !isPublicAddress(a) && !allowed.includes(a.toLowerCase()));
}

/** Throws OutboundRefusedError when a URL's host is a literal address the policy refuses (names are checked at connect time). */
export function checkLiteralHost(url: URL, policy: OutboundPolicy): void {
  const host = bareHost(url.hostname);
  if (isIP(host) && refusedAddress(host, [host], policy) !== undefined) throw new OutboundRefusedError(host, host);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for sockets: resolves as node does, then refuses the whole answer if any address is not allowed. */
export function guardedLookup(policy: OutboundPolicy, resolve: typeof dnsLookup = dnsLookup) {
  return (hostname: string, options: { family?: number | string; all?: boolean; hints?: number }, callback: LookupCallback): void => {
    const all: LookupAllOptions = { all: true, ...(options.hints !== undefined ? { hints: options.hints } : {}), family: Number(options.family ?? 0) || 0 };
    resolve(hostname, all, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = refusedAddress(hostname, addresses.map((a) => a.address), policy);
      if (refused !== undefined) return callback(new OutboundRefusedError(hostname, refused), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}

export interface OutboundFetch {
  fetch: typeof fetch;
  close(): Promise<void>;
}

/**
 * `fetch` for merchant-configured URLs: http(s) only, every connection's addresses checked
 * against the policy. Redirects are the caller's to refuse (`redirect: 'manual'`), as now.
 */
export function createOutboundFetch(policy: OutboundPolicy, base: typeof fetch = globalThis.fetch, resolve: typeof dnsLookup = dnsLookup): OutboundFetch {
  const agent = new Agent({ connect: { lookup: guardedLookup(policy, resolve) as never } });
  const guarded = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`outbound request refused: unsupported protocol ${url.protocol}`);
    try {
      checkLiteralHost(url, policy);
    } catch (err) {
      throw new TypeError('fetch failed', { cause: err });
    }
    return base(input, { ...init, dispatcher: agent } as RequestInit);
  }) as typeof fetch;
  return { fetch: guarded, close: () => agent.close() };
}

/** The policy's reason for refusing, when `err` (or its cause, as fetch wraps it) is a refusal. */
export function outboundRefusal(err: unknown): OutboundRefusedError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof OutboundRefusedError) return e;
  return undefined;
}
