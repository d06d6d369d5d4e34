// A socket's request function for component tests: each request type the
// test expects answers from a handler (typed by protocol/types.ts's
// RequestMap/ReplyMap); any other request rejects, so a stray request fails
// the test. The result is a vi.fn, so tests assert on what was sent.

import { vi } from 'vitest';
import type { ReplyMap, RequestMap, RequestSender, RequestType } from '../protocol/types';

export type ReplyHandlers = { [T in RequestType]?: (data: RequestMap[T]) => ReplyMap[T] | Promise<ReplyMap[T]> };

export function fakeSender(handlers: ReplyHandlers) {
  const send = vi.fn(async (type: RequestType, data: object): Promise<unknown> => {
    const handle = handlers[type] as ((d: object) => unknown) | undefined;
    if (!handle) throw new Error(`unexpected request ${type}`);
    return handle(data);
  });
  // vi.fn cannot carry RequestSender's per-type generic; the handlers above are typed by it.
  return send as typeof send & RequestSender;
}
