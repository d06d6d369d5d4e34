import { describe, expect, it } from 'vitest';
import { createRequestLimiter } from './requestLimiter';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('request limiter', () => {
  it('runs at most N at once and starts the queued ones in order as replies come, failures included', async () => {
    const limiter = createRequestLimiter(2);
    const gates = [deferred<number>(), deferred<number>(), deferred<number>(), deferred<number>()];
    const started: number[] = [];
    const results = gates.map((g, i) =>
      limiter.run(() => {
        started.push(i);
        return g.promise;
      }),
    );
    expect(started).toEqual([0, 1]);
    expect(limiter.queued()).toBe(2);
    gates[1].reject(new Error('refused'));
    await expect(results[1]).rejects.toThrow('refused');
    expect(started).toEqual([0, 1, 2]);
    gates[0].resolve(0);
    await expect(results[0]).resolves.toBe(0);
    expect(started).toEqual([0, 1, 2, 3]);
    gates[2].resolve(2);
    gates[3].resolve(3);
    await expect(Promise.all([results[2], results[3]])).resolves.toEqual([2, 3]);
    expect(limiter.inFlight()).toBe(0);
  });
});
