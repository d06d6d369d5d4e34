// Sign in with username/password (POST /api/login) or by pasting a token.
// Used as the start page and, after expiry, as a dialog over the dashboard.

import { useId, useState, type FormEvent } from 'react';

export interface LoginFormProps {
  onLogin(username: string, password: string): Promise<unknown>;
  /** Sign in with a pasted token; throws when the token is unusable. */
  onToken(token: string): unknown;
  title?: string;
  note?: string;
  initialError?: string | null;
}

type LoginMode = 'password' | 'token';

/** What to show for a failed sign-in: a wrong password in words, else the reason. */
function failureText(err: unknown): string {
  if (err instanceof Error) return (err as Error & { status?: number }).status === 401 ? 'Wrong username or password.' : err.message || String(err);
  return String(err);
}

export default function LoginForm({ onLogin, onToken, title = 'Sign in to dashd', note, initialError }: LoginFormProps) {
  const [mode, setMode] = useState<LoginMode>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(initialError || null);
  const [busy, setBusy] = useState(false);
  const ids = { user: useId(), pass: useId(), token: useId(), title: useId() };

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'password') await onLogin(username.trim(), password);
      else await onToken(token);
    } catch (err) {
      setError(failureText(err));
      setBusy(false);
    }
  }

  return (
    <form className="login" onSubmit={submit} aria-labelledby={ids.title} noValidate>
      <h1 id={ids.title} className="login-title">
        <span className="brand-mark" aria-hidden="true">◆</span> {title}
      </h1>
      {note ? <p className="login-note">{note}</p> : null}
      <div className="tabs" role="tablist" aria-label="Sign-in method">
        <button type="button" role="tab" aria-selected={mode === 'password'} className="tab" onClick={() => setMode('password')}>
          Password
        </button>
        <button type="button" role="tab" aria-selected={mode === 'token'} className="tab" onClick={() => setMode('token')}>
          Token
        </button>
      </div>
      {mode === 'password' ? (
        <>
          <label htmlFor={ids.user}>Username</label>
          <input id={ids.user} name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
          <label htmlFor={ids.pass}>Password</label>
          <input id={ids.pass} name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </>
      ) : (
        <>
          <label htmlFor={ids.token}>Access token</label>
          <textarea id={ids.token} name="token" rows={4} spellCheck={false} value={token} onChange={(e) => setToken(e.target.value)} placeholder="eyJhbGciOi…" required />
          <p className="hint">A token from <code>dashd token</code>. It is kept for this browser tab only and cannot be renewed.</p>
        </>
      )}
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" className="btn btn-primary btn-block" disabled={busy || (mode === 'password' ? !username || !password : !token.trim())}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}
