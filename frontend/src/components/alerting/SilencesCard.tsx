// Silences and maintenance windows: who silenced what until when and why;
// operators and admins create and expire them.

import { useCallback, useState } from 'react';
import type { ChangeEvent, FormEvent } from 'react';
import { silencePayload, type AlertingApi, type Matcher, type SilenceForm } from '../../services/alertingApi';
import { errorText, formatTime, useLoader } from './useLoader';

const EMPTY: SilenceForm = { matchers: [{ name: 'host', op: '=', value: '' }], hours: '2', comment: '' };

export default function SilencesCard({ api, canEdit }: { api: AlertingApi; canEdit: boolean }) {
  const load = useCallback(() => api.silences(), [api]);
  const { data, error, reload } = useLoader(load);
  const [form, setForm] = useState(EMPTY);
  const [formError, setFormError] = useState<string | null>(null);
  const silences = data?.silences || [];

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setFormError(null);
    try {
      await api.createSilence(silencePayload(form));
      setForm(EMPTY);
      reload();
    } catch (err) {
      setFormError(errorText(err));
    }
  };
  const expire = async (id: string) => {
    try {
      await api.expireSilence(id);
      reload();
    } catch (err) {
      setFormError(errorText(err));
    }
  };
  const setMatcher = (i: number, key: keyof Matcher) => (e: ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    setForm({ ...form, matchers: form.matchers.map((m, j) => (j === i ? { ...m, [key]: e.target.value } : m)) });

  return (
    <div className="admin-card alerting-silences">
      <h3>Silences</h3>
      {error ? <p className="result result-error" role="alert">{error}</p> : null}
      {silences.length ? (
        <ul className="silences">
          {silences.map((s) => (
            <li key={s.id} className={`silence silence-${s.state}`}>
              <span className="silence-state">{s.state}</span>{' '}
              <code>{s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(', ')}</code>{' '}
              until {formatTime(s.ends_at_ms)} by {s.created_by}: {s.comment}
              {s.expired_by ? ` (ended by ${s.expired_by})` : ''}
              {canEdit && s.state !== 'expired' ? (
                <button type="button" className="btn btn-small" onClick={() => expire(s.id)} aria-label={`Expire silence ${s.id}`}>
                  Expire
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="empty">No silences.</p>
      )}
      {canEdit ? (
        <form onSubmit={create} className="silence-form" aria-label="Create a silence">
          {form.matchers.map((m, i) => (
            // Rows have no identity of their own: the index is the key.
            <div key={i} className="matcher-row">
              <select aria-label={`Matcher ${i + 1} label`} value={m.name} onChange={setMatcher(i, 'name')}>
                {['host', 'alertname', 'severity', 'team'].map((n) => <option key={n} value={n}>{n === 'alertname' ? 'rule' : n}</option>)}
              </select>
              <select aria-label={`Matcher ${i + 1} operator`} value={m.op} onChange={setMatcher(i, 'op')}>
                {['=', '!=', '=~', '!~'].map((o) => <option key={o} value={o}>{o}</option>)}
              </select>
              <input aria-label={`Matcher ${i + 1} value`} value={m.value} onChange={setMatcher(i, 'value')} required />
            </div>
          ))}
          <button type="button" className="btn btn-small"
            onClick={() => setForm({ ...form, matchers: [...form.matchers, { name: 'alertname', op: '=', value: '' }] })}>
            Add matcher
          </button>
          <label>Hours<input type="number" min="0.05" step="0.05" value={form.hours} onChange={(e) => setForm({ ...form, hours: e.target.value })} /></label>
          <label>Comment<input value={form.comment} onChange={(e) => setForm({ ...form, comment: e.target.value })} required maxLength={1000} /></label>
          <button className="btn btn-primary" type="submit">Silence</button>
          {formError ? <p className="result result-error" role="alert">{formError}</p> : null}
        </form>
      ) : null}
    </div>
  );
}
