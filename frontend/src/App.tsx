// Top level: the session decides between the login page and the dashboard.
// When a session expires the dashboard stays mounted (charts keep their data)
// and the login form opens as a dialog over it.

import Dashboard from './components/Dashboard';
import LoginForm from './components/LoginForm';
import { AUTH, useAuth } from './hooks/useAuth';
import { useTheme } from './hooks/useTheme';
import type { AuthService } from './services/authService';

export default function App({ authService }: { authService?: AuthService }) {
  const theme = useTheme();
  const auth = useAuth(authService);

  if (auth.status === AUTH.CHECKING) {
    return (
      <div className="splash" role="status" aria-live="polite">
        <span className="brand-mark" aria-hidden="true">◆</span> Loading dashd…
      </div>
    );
  }

  if (auth.status === AUTH.SIGNED_OUT) {
    return (
      <main className="login-page">
        <LoginForm onLogin={auth.login} onToken={auth.signInWithToken} />
      </main>
    );
  }

  return (
    <>
      <Dashboard auth={auth} theme={theme} />
      {auth.status === AUTH.EXPIRED ? (
        <div className="modal-backdrop">
          <div className="modal" role="dialog" aria-modal="true" aria-label="Session expired">
            <LoginForm
              title="Session expired"
              note="Sign in again to continue; the dashboard keeps its data meanwhile."
              onLogin={auth.login}
              onToken={auth.signInWithToken}
            />
          </div>
        </div>
      ) : null}
    </>
  );
}
