/** The token, asked once per browser tab (sessionStorage); checked against the server before it is kept. */
import { useState, type FormEvent } from "react";
import { checkToken, setToken, type Session } from "../api";
import { navigate } from "../router";

export function LoginPage({ next, onSignedIn }: { next: string | undefined; onSignedIn: (session: Session) => void }) {
  const [token, setTokenText] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const expired = new URLSearchParams(location.search).has("expired");

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await checkToken(token.trim());
      if (!session) {
        setError("The server does not accept this token. `troupe server token create NAME` makes one.");
        return;
      }
      setToken(token.trim());
      onSignedIn(session);
      // Only a path of this UI: never another site.
      navigate(next?.startsWith("/") && !next.startsWith("//") ? next : "/workflows", { replace: true });
    } catch (caught) {
      setError(`Could not reach the server: ${(caught as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <h1>troupe</h1>
      <form onSubmit={(event) => void submit(event)}>
        {expired && !error && <p className="notice">The token was not accepted: sign in again.</p>}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(event) => setTokenText(event.target.value)}
          required
        />
        <button type="submit" disabled={busy || token.trim() === ""}>
          Sign in
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
