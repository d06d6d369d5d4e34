// Admins' alert channels: the list (secrets only as "set"), "Send test" with
// the receiver's answer, and a form to add or change an API channel.

import { useCallback, useState, type ChangeEvent, type FormEvent } from 'react';
import { EMPTY_CHANNEL_FORM, channelPayload, type AlertingApi, type Channel, type ChannelForm, type DeliveryOutcome, type Route } from '../../services/alertingApi';
import { errorText, useLoader } from './useLoader';

/** A test's answer, or `busy` while it is on its way. */
export type TestAnswerState = DeliveryOutcome | { busy: true };

function formFromChannel(c: Channel): ChannelForm {
  return {
    ...EMPTY_CHANNEL_FORM, name: c.name, kind: c.kind, format: c.format ?? EMPTY_CHANNEL_FORM.format, host: c.host ?? '',
    security: c.security ?? EMPTY_CHANNEL_FORM.security, username: c.username ?? '', from: c.from ?? '', timeout: String(c.timeout ?? 10), port: c.port ? String(c.port) : '',
    to: (c.to || []).join(', '), password: '', url: '', editing: true, resendInterval: String(c.resend_interval ?? 60),
    headers: [...(c.headers || []).map((name) => ({ name, value: '' })), { name: '', value: '' }],
  };
}

function target(c: Channel): string | undefined {
  if (c.kind === 'email') return `${c.host}:${c.port} → ${(c.to || []).join(', ')}`;
  return c.url;
}

export function TestAnswer({ answer }: { answer: TestAnswerState | undefined }) {
  if (!answer) return null;
  if ('busy' in answer) return <span className="result result-busy" role="status">Sending…</span>;
  return (
    <span className={`result ${answer.ok ? 'result-ok' : 'result-error'}`} role="status">
      {answer.ok ? '✓ ' : '✗ '}
      {answer.detail}
    </span>
  );
}

/** Routes come from the INI file ([route:NAME]); shown so an admin sees where alerts go. */
export function RoutesTable({ routes }: { routes: Route[] }) {
  if (!routes.length) return null;
  return (
    <details className="routes">
      <summary>Routing ({routes.length === 1 && routes[0].name === 'default' ? 'every alert to every channel' : `${routes.length} routes`})</summary>
      <table>
        <thead>
          <tr>
            <th scope="col">Route</th>
            <th scope="col">Matches</th>
            <th scope="col">Channels</th>
            <th scope="col">Grouping</th>
          </tr>
        </thead>
        <tbody>
          {routes.map((r) => (
            <tr key={r.name}>
              <td>{r.name}{r.stop ? ' (stop)' : ''}</td>
              <td><code>{[...r.matchers, `level ≥ ${r.level}`].join(', ')}</code></td>
              <td>{r.channels.join(', ')}</td>
              <td>by {r.group_by.join(', ')}; wait {r.group_wait} s, interval {r.group_interval} s, repeat {r.repeat_interval} s</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

export default function ChannelsCard({ api }: { api: AlertingApi }) {
  const load = useCallback(() => api.channels(), [api]);
  const { data, error, reload } = useLoader(load);
  const [answers, setAnswers] = useState<Record<string, TestAnswerState>>({});
  const [form, setForm] = useState(EMPTY_CHANNEL_FORM);
  const [formError, setFormError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  const sendTest = async (name: string) => {
    setAnswers((a) => ({ ...a, [name]: { busy: true } }));
    try {
      const { result } = await api.testChannel(name);
      setAnswers((a) => ({ ...a, [name]: result }));
    } catch (err) {
      setAnswers((a) => ({ ...a, [name]: { ok: false, detail: errorText(err) } }));
    }
  };

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setFormError(null);
    setSaved(null);
    try {
      const { channel } = await api.saveChannel(form.name.trim(), channelPayload(form));
      setSaved(`Saved channel ${channel.name}.`);
      setForm(EMPTY_CHANNEL_FORM);
      reload();
    } catch (err) {
      setFormError(errorText(err));
    }
  };

  const remove = async (name: string) => {
    try {
      await api.deleteChannel(name);
      reload();
    } catch (err) {
      setFormError(errorText(err));
    }
  };

  const set = (key: keyof ChannelForm) => (e: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm({ ...form, [key]: e.target.value });
  const setHeader = (i: number, key: 'name' | 'value') => (e: ChangeEvent<HTMLInputElement>) => {
    const headers = form.headers.map((h, j) => (j === i ? { ...h, [key]: e.target.value } : h));
    if (i === headers.length - 1 && headers[i].name) headers.push({ name: '', value: '' });
    setForm({ ...form, headers });
  };
  const channels = data?.channels || [];

  return (
    <div className="admin-card alerting-channels">
      <h3>Alert channels</h3>
      {error ? <p className="result result-error" role="alert">{error}</p> : null}
      {channels.length ? (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Target</th>
                <th scope="col">Secrets</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {channels.map((c) => (
                <tr key={c.name}>
                  <td>{c.name}{c.source === 'config' ? ' (INI)' : ''}</td>
                  <td>{c.kind}{c.format ? ` / ${c.format}` : ''}</td>
                  <td><code>{target(c)}</code></td>
                  <td>
                    {[...Object.entries(c.secrets || {}).filter(([, v]) => v).map(([k]) => k), ...(c.headers || [])]
                      .map((s) => <span key={s} className="secret-set">{s}: set</span>)}
                  </td>
                  <td className="actions">
                    <button type="button" className="btn btn-small" onClick={() => sendTest(c.name)}
                      aria-label={`Send a test to ${c.name}`}>Send test</button>
                    {c.source !== 'config' ? (
                      <>
                        <button type="button" className="btn btn-small" onClick={() => setForm(formFromChannel(c))}
                          aria-label={`Edit ${c.name}`}>Edit</button>
                        <button type="button" className="btn btn-small" onClick={() => remove(c.name)}
                          aria-label={`Delete ${c.name}`}>Delete</button>
                      </>
                    ) : null}
                    <TestAnswer answer={answers[c.name]} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="empty">No channels yet: add one below.</p>
      )}

      <RoutesTable routes={data?.routes || []} />

      <form onSubmit={save} className="channel-form" aria-label="Add or change a channel">
        <label>Name<input value={form.name} onChange={set('name')} required pattern="[A-Za-z0-9_.\-]+" /></label>
        <label>
          Kind
          <select value={form.kind} onChange={set('kind')}>
            <option value="webhook">Webhook</option>
            <option value="email">E-mail</option>
            <option value="alertmanager">Alertmanager</option>
          </select>
        </label>
        {form.kind === 'email' ? (
          <>
            <label>SMTP host<input value={form.host} onChange={set('host')} required /></label>
            <label>Port<input type="number" min="1" max="65535" value={form.port} onChange={set('port')} placeholder="587" /></label>
            <label>
              Security
              <select value={form.security} onChange={set('security')}>
                <option value="starttls">STARTTLS</option>
                <option value="tls">TLS</option>
                <option value="none">none</option>
              </select>
            </label>
            <label>Username<input value={form.username} onChange={set('username')} autoComplete="off" /></label>
            <label>
              Password
              <input type="password" value={form.password} onChange={set('password')} autoComplete="new-password"
                placeholder="unchanged if empty" />
            </label>
            <label>From<input type="email" value={form.from} onChange={set('from')} required /></label>
            <label>To (comma-separated)<input value={form.to} onChange={set('to')} required /></label>
          </>
        ) : (
          <>
            <label>
              URL
              <input type="url" value={form.url} onChange={set('url')} required={!form.editing}
                placeholder={form.editing ? 'unchanged if empty' : 'https://hooks.slack.com/services/…'} />
            </label>
            {form.kind === 'webhook' ? (
              <label>
                Format
                <select value={form.format} onChange={set('format')}>
                  {['slack', 'mattermost', 'discord', 'teams', 'generic'].map((f) => <option key={f} value={f}>{f}</option>)}
                </select>
              </label>
            ) : (
              <label>Re-post every (s)<input type="number" min="5" value={form.resendInterval} onChange={set('resendInterval')} /></label>
            )}
            <fieldset className="headers">
              <legend>Headers (values are write-only)</legend>
              {form.headers.map((h, i) => (
                // Rows have no identity of their own: the index is the key.
                <div key={i} className="header-row">
                  <input aria-label={`Header ${i + 1} name`} value={h.name} onChange={setHeader(i, 'name')} placeholder="Authorization" />
                  <input aria-label={`Header ${i + 1} value`} type="password" value={h.value} onChange={setHeader(i, 'value')}
                    placeholder="unchanged if empty" autoComplete="new-password" />
                </div>
              ))}
            </fieldset>
          </>
        )}
        <label>Timeout (s)<input type="number" min="0.5" max="120" step="0.5" value={form.timeout} onChange={set('timeout')} /></label>
        <button className="btn btn-primary" type="submit" disabled={!form.name.trim()}>Save channel</button>
        {formError ? <p className="result result-error" role="alert">{formError}</p> : null}
        {saved ? <p className="result result-ok" role="status">{saved}</p> : null}
      </form>
    </div>
  );
}
