// The WebSocket double for the hook's state-machine tests and the whole-app
// tests: the test plays the server (open, receive, drop) and reads what the
// page sent. Sending on a socket that is not open throws, as a real one does.

/** A request the page sent, as the daemon would parse it. */
export interface SentMessage {
  type: string;
  data: Record<string, unknown>;
  correlation_id?: string | null;
}

export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];

  url: string;
  readyState = 0;
  sent: SentMessage[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((e: object) => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: object) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.instances.push(this);
  }

  send(text: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }

  close(code?: number, reason?: string): void {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }

  // -- the "server" side --
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server: an object (sent as JSON) or raw text. */
  receive(msg: object | string): void {
    this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }

  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  sentOfType(type: string): SentMessage[] {
    return this.sent.filter((m) => m.type === type);
  }

  /** The newest request of a type, if any. */
  last(type: string): SentMessage | undefined {
    return this.sentOfType(type).at(-1);
  }

  /** Open, and answer the auth message with connection_ack. */
  accept(ack: Record<string, unknown> = {}): void {
    this.open();
    const auth = this.sent.find((m) => m.type === 'auth');
    this.receive({
      type: 'connection_ack',
      correlation_id: auth?.correlation_id ?? null,
      data: { session_id: 's1', user: 'alice', role: 'operator', seq: 0, interval: 1, metrics: [], ...ack },
    });
  }
}

/** FakeWebSocket where a WebSocket class is expected (the connection's `WebSocket` option, the global). */
export const FakeWebSocketClass = FakeWebSocket as unknown as typeof WebSocket;

/** The socket opened last; throws when none was. */
export function latestSocket(): FakeWebSocket {
  const ws = FakeWebSocket.instances.at(-1);
  if (!ws) throw new Error('no socket was opened');
  return ws;
}
