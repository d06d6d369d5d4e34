import { describe, expect, it } from 'vitest';
import { EMPTY_CHANNEL_FORM, alertLinkParams, channelPayload, createAlertingApi, silencePayload, type ChannelForm } from './alertingApi';

const form = (fields: Partial<ChannelForm>): ChannelForm => ({ ...EMPTY_CHANNEL_FORM, ...fields });

function fakeFetch(status: number, body: unknown) {
  const calls: Array<RequestInit & { url: string }> = [];
  const impl = async (url: string, init?: RequestInit) => {
    calls.push({ url, ...init });
    return { ok: status < 400, status, statusText: 'x', json: async () => body };
  };
  return { impl, calls };
}

describe('createAlertingApi', () => {
  it('sends the bearer token and JSON, and returns the answer', async () => {
    const { impl, calls } = fakeFetch(200, { result: { ok: true, detail: 'HTTP 200: ok' } });
    const api = createAlertingApi(() => 'tok', impl);
    expect(await api.testChannel('team slack')).toEqual({ result: { ok: true, detail: 'HTTP 200: ok' } });
    expect(calls[0].url).toBe('/api/alerting/channels/team%20slack/test');
    expect(calls[0].method).toBe('POST');
    expect(calls[0].headers).toMatchObject({ Authorization: 'Bearer tok' });
  });

  it("turns an error answer into an ApiError with the daemon's reason", async () => {
    const { impl } = fakeFetch(400, { error: { code: 'bad_message', message: 'channel x: url is required' } });
    const api = createAlertingApi(() => 'tok', impl);
    await expect(api.saveChannel('x', {})).rejects.toMatchObject({ status: 400, message: 'channel x: url is required' });
  });
});

describe('channelPayload', () => {
  it('leaves an empty password out so the stored one is kept', () => {
    const data = channelPayload(form({ kind: 'email', timeout: '10', host: 'smtp.x', port: '587', security: 'starttls',
      username: 'u', password: '', from: 'd@x', to: 'a@x, b@x', headers: [] }));
    expect(data).toEqual({ kind: 'email', timeout: 10, host: 'smtp.x', port: 587, security: 'starttls', username: 'u',
      from: 'd@x', to: ['a@x', 'b@x'] });
  });

  it('leaves an empty URL out when editing (the stored one is kept)', () => {
    expect(channelPayload(form({ kind: 'webhook', timeout: '5', url: '', format: 'slack', headers: [] })))
      .toEqual({ kind: 'webhook', timeout: 5, format: 'slack', headers: {} });
  });

  it('sends an empty header value as null (keep the stored secret)', () => {
    const data = channelPayload(form({ kind: 'webhook', timeout: '5', url: ' https://h/x ', format: 'slack',
      headers: [{ name: 'Authorization', value: '' }, { name: 'X-New', value: 'v' }, { name: ' ', value: 'ignored' }] }));
    expect(data).toEqual({ kind: 'webhook', timeout: 5, url: 'https://h/x', format: 'slack',
      headers: { Authorization: null, 'X-New': 'v' } });
  });
});

describe('silencePayload and alertLinkParams', () => {
  it('builds a silence request from the form', () => {
    expect(silencePayload({ matchers: [{ name: 'host', op: '=~', value: 'db.*' }, { name: '', op: '=', value: '' }],
      hours: '2', comment: ' swap disks ' })).toEqual({
      matchers: [{ name: 'host', op: '=~', value: 'db.*' }], duration_s: 7200, comment: 'swap disks' });
  });

  it('reads an alert link and refuses a broken one', () => {
    expect(alertLinkParams('?from=1000&to=5000&host=web1')).toEqual({ from: 1000, to: 5000, host: 'web1' });
    expect(alertLinkParams('?from=1000&to=5000')).toEqual({ from: 1000, to: 5000, host: null });
    expect(alertLinkParams('?from=5000&to=1000')).toBeNull();
    expect(alertLinkParams('?to=1000')).toBeNull();
    expect(alertLinkParams('')).toBeNull();
  });
});
