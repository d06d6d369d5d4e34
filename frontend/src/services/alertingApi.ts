// HTTP client for /api/alerting/ (docs/alerting.md#api): channels, "send
// test", the delivery log, silences and the alert timeline. Every call sends
// the session's bearer token; an error answer becomes an ApiError whose
// message is the daemon's one-line reason.

import { apiErrorFrom, type FetchLike } from './authService';

const BASE = '/api/alerting';

type Json = Record<string, unknown>;

/** One outcome of sending to a receiver: a "send test" answer or one delivery attempt. */
export interface DeliveryOutcome {
  ok: boolean;
  /** The receiver's answer or the error, one line ("HTTP 200: ok", "connection refused"). */
  detail: string;
  status?: number;
}

/** One attempt in a delivery's log. */
export interface DeliveryAttempt extends DeliveryOutcome {
  ts_ms: number;
  node: string;
  duration_ms: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'dead'];

/** A notice in the delivery log (GET deliveries). */
export interface Delivery {
  id: number;
  channel: string;
  status: DeliveryStatus;
  attempts: number;
  /** How many alerts the notice carries. */
  alerts: number;
  title_status: string;
  kind: 'notify' | 'repeat' | string;
  created_at_ms: number;
  last_error: string | null;
  log: DeliveryAttempt[];
}

export type ChannelKind = 'webhook' | 'email' | 'alertmanager';

/** A channel as the API shows it: no secret values, only whether each is set. */
export interface Channel {
  name: string;
  kind: ChannelKind;
  source: 'config' | 'api';
  /** Header names (their values are secret). */
  headers: string[];
  secrets: Record<string, boolean>;
  timeout?: number;
  url?: string;
  format?: string;
  resend_interval?: number;
  host?: string;
  port?: number;
  security?: string;
  username?: string;
  from?: string;
  to?: string[];
}

/** A route from the INI file ([route:NAME]). */
export interface Route {
  name: string;
  channels: string[];
  matchers: string[];
  level: string;
  group_by: string[];
  group_wait: number;
  group_interval: number;
  repeat_interval: number;
  stop: boolean;
}

export interface Matcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~' | string;
  value: string;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  starts_at_ms?: number;
  ends_at_ms: number;
  comment: string;
  created_by: string;
  created_at_ms?: number;
  expired_by?: string | null;
  state: 'pending' | 'active' | 'expired';
}

/** One firing or resolve in the alert timeline. */
export interface TimelineEvent {
  event_key: string;
  ts_ms: number;
  state: 'firing' | 'resolved' | string;
  level: string;
  labels: Record<string, string>;
  summary: string;
  silenced_by: string | null;
}

export interface ChannelsReply {
  channels: Channel[];
  routes: Route[];
}
export interface DeliveriesReply {
  deliveries: Delivery[];
  counts: Partial<Record<DeliveryStatus, number>>;
}

/** The channel form's fields (components/alerting/ChannelsCard); EMPTY_CHANNEL_FORM is a new channel's. */
export interface ChannelForm {
  name: string;
  /** Editing a stored channel: an empty URL or secret keeps the stored one. */
  editing?: boolean;
  kind: string;
  timeout: string | number;
  host: string;
  port: string | number;
  security: string;
  username: string;
  password: string;
  from: string;
  to: string;
  url: string;
  format: string;
  resendInterval: string | number;
  headers: Array<{ name: string; value: string }>;
}

export const EMPTY_CHANNEL_FORM: ChannelForm = {
  name: '', kind: 'webhook', url: '', format: 'slack', timeout: '10', headers: [{ name: '', value: '' }],
  host: '', port: '', security: 'starttls', username: '', password: '', from: '', to: '', resendInterval: '60',
};

/** The silence form's fields (components/alerting/SilencesCard). */
export interface SilenceForm {
  matchers: Array<{ name: string; op: string; value: string }>;
  hours: string | number;
  comment: string;
}

export interface AlertingApi {
  channels(): Promise<ChannelsReply>;
  saveChannel(name: string, data: Json): Promise<{ channel: Channel }>;
  deleteChannel(name: string): Promise<unknown>;
  testChannel(name: string): Promise<{ result: DeliveryOutcome }>;
  deliveries(limit?: number, status?: string): Promise<DeliveriesReply>;
  silences(): Promise<{ silences: Silence[] }>;
  createSilence(data: Json): Promise<{ silence: Silence }>;
  expireSilence(id: string): Promise<unknown>;
  timeline(fromMs: number, toMs: number, limit?: number): Promise<{ events: TimelineEvent[] }>;
}

export function createAlertingApi(getToken: () => string | null, fetchImpl: FetchLike = (input, init) => fetch(input, init)): AlertingApi {
  // The daemon's answers are trusted to have the documented shapes (docs/alerting.md#api).
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${getToken() || ''}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetchImpl(`${BASE}/${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw await apiErrorFrom(res);
    return (res.status === 204 ? null : await res.json()) as T;
  }
  const name = (n: string) => encodeURIComponent(n);
  return {
    channels: () => call<ChannelsReply>('GET', 'channels'),
    saveChannel: (n, data) => call<{ channel: Channel }>('PUT', `channels/${name(n)}`, data),
    deleteChannel: (n) => call<unknown>('DELETE', `channels/${name(n)}`),
    testChannel: (n) => call<{ result: DeliveryOutcome }>('POST', `channels/${name(n)}/test`),
    deliveries: (limit = 50, status = '') =>
      call<DeliveriesReply>('GET', `deliveries?limit=${limit}${status ? `&status=${encodeURIComponent(status)}` : ''}`),
    silences: () => call<{ silences: Silence[] }>('GET', 'silences'),
    createSilence: (data) => call<{ silence: Silence }>('POST', 'silences', data),
    expireSilence: (id) => call<unknown>('DELETE', `silences/${name(id)}`),
    timeline: (fromMs, toMs, limit = 200) => call<{ events: TimelineEvent[] }>('GET', `timeline?from=${fromMs}&to=${toMs}&limit=${limit}`),
  };
}

/**
 * The channel form's fields as the API's channel object. Secrets left empty
 * are left out (the daemon keeps the stored ones); header values left empty
 * are sent as null for the same reason.
 */
export function channelPayload(form: ChannelForm): Json {
  const data: Json = { kind: form.kind, timeout: Number(form.timeout) || 10 };
  if (form.kind === 'email') {
    Object.assign(data, {
      host: form.host.trim(),
      port: Number(form.port) || undefined,
      security: form.security,
      username: form.username.trim(),
      from: form.from.trim(),
      to: form.to.split(',').map((s) => s.trim()).filter(Boolean),
    });
    if (form.password) data.password = form.password;
  } else {
    if (form.url.trim()) data.url = form.url.trim(); // empty when editing: keep the stored URL
    if (form.kind === 'webhook') data.format = form.format;
    if (form.kind === 'alertmanager') data.resend_interval = Number(form.resendInterval) || 60;
    const headers: Record<string, string | null> = {};
    for (const h of form.headers) {
      if (h.name.trim()) headers[h.name.trim()] = h.value === '' ? null : h.value;
    }
    data.headers = headers;
  }
  return data;
}

/** Silence form fields as the API's request. */
export function silencePayload(form: SilenceForm): Json {
  const matchers = form.matchers
    .filter((m) => m.name.trim())
    .map((m) => ({ name: m.name.trim(), op: m.op, value: m.value }));
  return { matchers, duration_s: Math.round(Number(form.hours) * 3600), comment: form.comment.trim() };
}

/** The time range (epoch ms) and host of a dashboard link from an alert. */
export interface AlertRange {
  from: number;
  to: number;
  host: string | null;
}

/** Parameters of a dashboard link from an alert: `/?from=<ms>&to=<ms>&host=<h>`. */
export function alertLinkParams(search: string | null | undefined): AlertRange | null {
  const params = new URLSearchParams(search || '');
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  if (!Number.isFinite(from) || !Number.isFinite(to) || !params.get('from') || !params.get('to') || to <= from) return null;
  return { from, to, host: params.get('host') || null };
}
