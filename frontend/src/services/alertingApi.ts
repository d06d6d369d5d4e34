// HTTP client for /api/alerting/ (docs/alerting.md#api): channels, "send
// test", the delivery log, silences and the alert timeline. Every call sends
// the session's bearer token; an error answer becomes an ApiError whose
// message is the daemon's one-line reason.

import { ApiError } from './authService';

const BASE = '/api/alerting';

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;
type Json = Record<string, unknown>;

/** The channel form's fields (components/alerting/ChannelsCard). */
export interface ChannelForm {
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

/** The silence form's fields (components/alerting/SilencesCard). */
export interface SilenceForm {
  matchers: Array<{ name: string; op: string; value: string }>;
  hours: string | number;
  comment: string;
}

export interface AlertingApi {
  channels(): Promise<Json | null>;
  saveChannel(name: string, data: Json): Promise<Json | null>;
  deleteChannel(name: string): Promise<Json | null>;
  testChannel(name: string): Promise<Json | null>;
  deliveries(limit?: number, status?: string): Promise<Json | null>;
  silences(): Promise<Json | null>;
  createSilence(data: Json): Promise<Json | null>;
  expireSilence(id: string): Promise<Json | null>;
  timeline(fromMs: number, toMs: number, limit?: number): Promise<Json | null>;
}

async function readError(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string } } | null = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const err = body && body.error;
  return new ApiError(res.status, err?.code, err?.message || res.statusText);
}

export function createAlertingApi(getToken: () => string | null, fetchImpl: FetchLike = (input, init) => fetch(input, init)): AlertingApi {
  async function call(method: string, path: string, body?: unknown): Promise<Json | null> {
    const headers: Record<string, string> = { Authorization: `Bearer ${getToken() || ''}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetchImpl(`${BASE}/${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw await readError(res);
    return res.status === 204 ? null : res.json();
  }
  const name = (n: string) => encodeURIComponent(n);
  return {
    channels: () => call('GET', 'channels'),
    saveChannel: (n, data) => call('PUT', `channels/${name(n)}`, data),
    deleteChannel: (n) => call('DELETE', `channels/${name(n)}`),
    testChannel: (n) => call('POST', `channels/${name(n)}/test`),
    deliveries: (limit = 50, status = '') =>
      call('GET', `deliveries?limit=${limit}${status ? `&status=${encodeURIComponent(status)}` : ''}`),
    silences: () => call('GET', 'silences'),
    createSilence: (data) => call('POST', 'silences', data),
    expireSilence: (id) => call('DELETE', `silences/${name(id)}`),
    timeline: (fromMs, toMs, limit = 200) => call('GET', `timeline?from=${fromMs}&to=${toMs}&limit=${limit}`),
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

/** Parameters of a dashboard link from an alert: `/?from=<ms>&to=<ms>&host=<h>`. */
export function alertLinkParams(search: string | null | undefined): { from: number; to: number; host: string | null } | null {
  const params = new URLSearchParams(search || '');
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  if (!Number.isFinite(from) || !Number.isFinite(to) || !params.get('from') || !params.get('to') || to <= from) return null;
  return { from, to, host: params.get('host') || null };
}
