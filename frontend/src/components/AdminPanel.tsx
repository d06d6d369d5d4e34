// Admin controls: collection interval (settings_get/settings_set), alert rules
// (rule_list/rule_set/rule_delete) and broadcasting a notification.

import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import type { AlertRule, NotificationLevel, RequestSender, RuleOp, RuleStatus } from '../protocol/types';

/** The rule form's fields: numbers as typed (strings) until sent. */
interface RuleForm {
  name: string;
  metric: string;
  op: RuleOp;
  threshold: string;
  for: string;
  level: NotificationLevel;
  clear: string;
  enabled: boolean;
}

interface Broadcast {
  level: NotificationLevel;
  title: string;
  message: string;
}

type ResultState = { kind: 'busy' | 'ok' | 'error'; text: string } | null;
type RunResult = <R>(fn: () => Promise<R>, okText: string | ((r: R) => string)) => Promise<R | undefined>;

const RULE_OPS: readonly RuleOp[] = ['>', '>=', '<', '<='];

const EMPTY_RULE: RuleForm = { name: '', metric: 'cpu_usage', op: '>', threshold: '90', for: '30', level: 'warning', clear: '', enabled: true };

function useResult(): [ResultState, RunResult] {
  const [result, setResult] = useState<ResultState>(null);
  const run = useCallback(async <R,>(fn: () => Promise<R>, okText: string | ((r: R) => string)) => {
    setResult({ kind: 'busy', text: 'Working…' });
    try {
      const r = await fn();
      setResult({ kind: 'ok', text: typeof okText === 'function' ? okText(r) : okText });
      return r;
    } catch (err) {
      setResult({ kind: 'error', text: (err instanceof Error && err.message) || String(err) });
      return undefined;
    }
  }, []);
  return [result, run];
}

/** "clears at < 85" — the value must cross back over `clear` (default: the threshold). */
export function clearText(r: Pick<RuleStatus, 'op' | 'threshold' | 'clear' | 'clear_threshold'>): string {
  const clear = r.clear_threshold ?? r.clear ?? r.threshold;
  const back = ({ '>': '≤', '>=': '<', '<': '≥', '<=': '>' } as Record<string, string>)[r.op] || '';
  return `${back} ${clear}`.trim();
}

/** The rule's current state from rule_list: firing on which hosts, pending, ok or off. */
export function stateText(r: Pick<RuleStatus, 'enabled' | 'state' | 'firing' | 'pending'>): string {
  if (r.enabled === false || r.state === 'disabled') return 'disabled';
  if (r.firing?.length) return `firing on ${r.firing.join(', ')}`;
  if (r.pending?.length) return `pending on ${r.pending.join(', ')}`;
  return r.state === 'ok' || r.state === undefined ? 'ok' : r.state;
}

function Result({ result }: { result: ResultState }) {
  if (!result) return null;
  return (
    <p className={`result result-${result.kind}`} role={result.kind === 'error' ? 'alert' : 'status'}>
      {result.text}
    </p>
  );
}

export interface AdminPanelProps {
  send: RequestSender;
  connected: boolean;
  /** Metric names a rule may watch (the catalogue). */
  metricNames: readonly string[];
}

export default function AdminPanel({ send, connected, metricNames }: AdminPanelProps) {
  const ids = { interval: useId(), title: useId(), message: useId(), level: useId(), heading: useId() };
  const [interval, setIntervalValue] = useState('');
  const [intervalResult, runInterval] = useResult();
  const [rules, setRules] = useState<RuleStatus[]>([]);
  const [rule, setRule] = useState<RuleForm>(EMPTY_RULE);
  const [ruleResult, runRule] = useResult();
  const [bc, setBc] = useState<Broadcast>({ level: 'info', title: '', message: '' });
  const [bcResult, runBc] = useResult();

  useEffect(() => {
    if (!connected) return;
    let cancelled = false;
    send('settings_get', {})
      .then((d) => {
        if (!cancelled) setIntervalValue(String(d.interval ?? ''));
      })
      .catch(() => {});
    send('rule_list', {})
      .then((d) => {
        if (!cancelled) setRules(Array.isArray(d.rules) ? d.rules : []);
      })
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [connected, send]);

  const saveInterval = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    runInterval(async () => {
      const d = await send('settings_set', { interval: Number(interval) });
      setIntervalValue(String(d.interval));
      return d;
    }, (d) => `Collection interval set to ${d.interval} s.`);
  };

  const saveRule = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data: AlertRule = {
      name: rule.name.trim(),
      metric: rule.metric,
      op: rule.op,
      threshold: Number(rule.threshold),
      for: Number(rule.for || 0),
      level: rule.level,
      enabled: rule.enabled,
    };
    if (rule.clear !== '') data.clear = Number(rule.clear);
    runRule(async () => {
      const d = await send('rule_set', data);
      const saved: RuleStatus = d.rule || data;
      setRules((rs) => [...rs.filter((r) => r.name !== saved.name), saved].sort((a, b) => a.name.localeCompare(b.name)));
      setRule(EMPTY_RULE);
      return saved;
    }, (r) => `Rule ${r.name} saved.`);
  };

  // Deleting asks first: the Delete button turns into "Delete rule X? Yes / No".
  const [confirming, setConfirming] = useState<string | null>(null);
  const deleteRule = (name: string) =>
    runRule(async () => {
      setConfirming(null);
      await send('rule_delete', { name });
      setRules((rs) => rs.filter((r) => r.name !== name));
      return name;
    }, `Rule ${name} deleted.`);

  const broadcast = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    runBc(async () => {
      const d = await send('broadcast', { level: bc.level, title: bc.title.trim(), message: bc.message.trim() });
      setBc((b) => ({ ...b, title: '', message: '' }));
      return d;
    }, 'Notification sent.');
  };

  return (
    <section className="panel admin" aria-labelledby={ids.heading}>
      <header className="panel-head">
        <h2 id={ids.heading}>Administration</h2>
      </header>
      <div className="admin-grid">
        <form onSubmit={saveInterval} className="admin-card" aria-label="Collection interval">
          <h3>Collection interval</h3>
          <label htmlFor={ids.interval}>Seconds between samples</label>
          <div className="row">
            <input id={ids.interval} type="number" min="0.1" step="0.1" value={interval} onChange={(e) => setIntervalValue(e.target.value)} required />
            <button className="btn" type="submit" disabled={!connected || !interval}>Apply</button>
          </div>
          <Result result={intervalResult} />
        </form>

        <form onSubmit={broadcast} className="admin-card" aria-label="Broadcast a notification">
          <h3>Broadcast a notification</h3>
          <label htmlFor={ids.level}>Level</label>
          <select id={ids.level} value={bc.level} onChange={(e) => setBc({ ...bc, level: e.target.value as NotificationLevel })}>
            <option value="info">Info</option>
            <option value="warning">Warning</option>
            <option value="critical">Critical</option>
          </select>
          <label htmlFor={ids.title}>Title</label>
          <input id={ids.title} value={bc.title} maxLength={200} onChange={(e) => setBc({ ...bc, title: e.target.value })} required />
          <label htmlFor={ids.message}>Message</label>
          <textarea id={ids.message} rows={2} value={bc.message} maxLength={2000} onChange={(e) => setBc({ ...bc, message: e.target.value })} />
          <button className="btn btn-primary" type="submit" disabled={!connected || !bc.title.trim()}>Send</button>
          <Result result={bcResult} />
        </form>

        <div className="admin-card admin-rules">
          <h3>Alert rules</h3>
          {rules.length ? (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col" className="col-optional">Condition</th>
                    <th scope="col" className="col-optional">Clears at</th>
                    <th scope="col" className="col-optional">Level</th>
                    <th scope="col">State</th>
                    <th scope="col"><span className="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {rules.map((r) => (
                    <tr key={r.name} data-testid="rule-row" data-rule={r.name}>
                      <td>{r.name}{r.enabled === false ? ' (off)' : ''}</td>
                      <td className="col-optional"><code>{r.metric} {r.op} {r.threshold}</code>{r.for ? ` for ${r.for}s` : ''}</td>
                      <td className="col-optional" data-testid="rule-clear">{clearText(r)}</td>
                      <td className="col-optional"><span className={`level level-${r.level}`}>{r.level}</span></td>
                      <td data-testid="rule-state">{stateText(r)}</td>
                      <td>
                        {confirming === r.name ? (
                          <span className="confirm" role="group" aria-label={`Delete rule ${r.name}?`}>
                            <span>Delete?</span>
                            <button type="button" className="btn btn-small btn-danger" onClick={() => deleteRule(r.name)}>
                              Yes, delete {r.name}
                            </button>
                            <button type="button" className="btn btn-small" onClick={() => setConfirming(null)}>
                              Keep
                            </button>
                          </span>
                        ) : (
                          <button type="button" className="btn btn-small" onClick={() => setConfirming(r.name)} aria-label={`Delete rule ${r.name}`}>
                            Delete
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p className="empty">No rules.</p>
          )}
          <form onSubmit={saveRule} className="rule-form" aria-label="Add or replace a rule">
            <label>
              Name
              <input value={rule.name} onChange={(e) => setRule({ ...rule, name: e.target.value })} required pattern="[A-Za-z0-9_.\-]+" />
            </label>
            <label>
              Metric
              <select value={rule.metric} onChange={(e) => setRule({ ...rule, metric: e.target.value })}>
                {metricNames.map((m) => (
                  <option key={m} value={m}>{m}</option>
                ))}
              </select>
            </label>
            <label>
              Op
              <select value={rule.op} onChange={(e) => setRule({ ...rule, op: e.target.value as RuleOp })}>
                {RULE_OPS.map((o) => (
                  <option key={o} value={o}>{o}</option>
                ))}
              </select>
            </label>
            <label>
              Threshold
              <input type="number" step="any" value={rule.threshold} onChange={(e) => setRule({ ...rule, threshold: e.target.value })} required />
            </label>
            <label>
              For (s)
              <input type="number" min="0" step="1" value={rule.for} onChange={(e) => setRule({ ...rule, for: e.target.value })} />
            </label>
            <label>
              Clear at
              <input type="number" step="any" value={rule.clear} placeholder="threshold" onChange={(e) => setRule({ ...rule, clear: e.target.value })} />
            </label>
            <label>
              Level
              <select value={rule.level} onChange={(e) => setRule({ ...rule, level: e.target.value as NotificationLevel })}>
                <option value="info">info</option>
                <option value="warning">warning</option>
                <option value="critical">critical</option>
              </select>
            </label>
            <label className="check">
              <input type="checkbox" checked={rule.enabled} onChange={(e) => setRule({ ...rule, enabled: e.target.checked })} /> Enabled
            </label>
            <button className="btn" type="submit" disabled={!connected || !rule.name.trim()}>Save rule</button>
          </form>
          <Result result={ruleResult} />
        </div>
      </div>
    </section>
  );
}
