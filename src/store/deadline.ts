/**
 * A deadline that a busy event loop cannot trip by itself. When the loop is blocked past a
 * deadline (a loaded machine: we measured 0.6–1 s stalls with two cores shared), the timer
 * and the reply that arrived in time become ready together, and the timers phase runs
 * first: a plain timeout then fails a call that had succeeded. Here the timer only arms a
 * `setImmediate`, which runs after the poll phase has read whatever is waiting on the
 * sockets; only a call still unanswered then times out. A server that really does not
 * answer is still given up on at the deadline (plus one loop turn).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(onTimeout());
      });
    }, ms);
    work.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * An AbortSignal for `fetch` with the same rule: it aborts at `ms` only if the call is still
 * unanswered one loop turn later. Call `done()` once the whole answer (body included) is read.
 */
export function deadlineSignal(ms: number): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  let finished = false;
  const timer = setTimeout(() => {
    setImmediate(() => {
      if (!finished) controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
    });
  }, ms);
  return {
    signal: controller.signal,
    done() {
      finished = true;
      clearTimeout(timer);
    },
  };
}
