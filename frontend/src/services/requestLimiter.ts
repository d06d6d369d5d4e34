// At most N requests of a kind in flight, the rest queued in order. dashd
// refuses a third concurrent `history`/`stats` on one connection
// (`rate_limited`, docs/security.md), and the explorer asks one `history`
// per chart at once; queueing here keeps every chart's query accepted.

export interface RequestLimiter {
  run<T>(request: () => Promise<T>): Promise<T>;
  inFlight(): number;
  queued(): number;
}

export function createRequestLimiter(maxInFlight: number): RequestLimiter {
  let running = 0;
  const waiting: Array<() => void> = [];
  const next = () => {
    running -= 1;
    waiting.shift()?.();
  };
  return {
    run<T>(request: () => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const start = () => {
          running += 1;
          let pending: Promise<T>;
          try {
            pending = request();
          } catch (err) {
            pending = Promise.reject(err);
          }
          pending.then(resolve, reject).finally(next);
        };
        if (running < maxInFlight) start();
        else waiting.push(start);
      });
    },
    inFlight: () => running,
    queued: () => waiting.length,
  };
}
