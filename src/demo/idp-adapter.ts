/**
 * In-memory storage for the demo identity provider (oidc-provider's adapter interface).
 * Demo mode is one process by design, so memory is the right store; entries expire with
 * the lifetime the provider gives them.
 */
type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; consumed?: number };

export function createMemoryAdapterClass(now: () => number = Date.now) {
  const store = new Map<string, { payload: Payload; expiresAt: number | null }>();
  const live = (key: string): Payload | undefined => {
    const e = store.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== null && e.expiresAt <= now()) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  };
  return class MemoryAdapter {
    constructor(private readonly model: string) {}
    private key(id: string): string {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      store.set(this.key(id), { payload, expiresAt: expiresIn ? now() + expiresIn * 1000 : null });
    }
    async find(id: string): Promise<Payload | undefined> {
      return live(this.key(id));
    }
    async findByUid(uid: string): Promise<Payload | undefined> {
      for (const [k] of store) if (k.startsWith(`${this.model}:`) && live(k)?.uid === uid) return live(k);
      return undefined;
    }
    async findByUserCode(code: string): Promise<Payload | undefined> {
      for (const [k] of store) if (k.startsWith(`${this.model}:`) && live(k)?.userCode === code) return live(k);
      return undefined;
    }
    async consume(id: string): Promise<void> {
      const p = live(this.key(id));
      if (p) p.consumed = Math.floor(now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}
