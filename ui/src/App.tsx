/** The page's frame: the token (from the login page, or `troupe ui`'s link), the header, and the route's page. */
import { createContext, useContext, useEffect, useState } from "react";
import { clearToken, getJson, getToken, setToken, type Session } from "./api";
import { LoginPage } from "./pages/LoginPage";
import { LogsPage } from "./pages/LogsPage";
import { PoolsPage } from "./pages/PoolsPage";
import { SubmitPage } from "./pages/SubmitPage";
import { WorkflowListPage } from "./pages/WorkflowListPage";
import { WorkflowPage } from "./pages/WorkflowPage";
import { Link } from "./Link";
import { navigate, parseRoute, useLocation } from "./router";

const SessionContext = createContext<Session>({ user: "", admin: false, read_only: false });
export const useSession = () => useContext(SessionContext);

/**
 * `troupe ui` prints its URL with the token in the fragment (#token=...), which the browser never sends:
 * it is taken into the tab's session and removed from the address bar at once.
 */
function takeTokenFromFragment(): void {
  const match = /^#token=([A-Za-z0-9_\-.~]+)$/.exec(location.hash);
  if (!match) return;
  setToken(match[1]!);
  history.replaceState(null, "", location.pathname + location.search);
}
takeTokenFromFragment();

export function App() {
  const where = useLocation();
  const [path, search = ""] = where.split(/(?=\?)/);
  const route = parseRoute(path!, search);
  const [session, setSession] = useState<Session | undefined>();
  const [sessionError, setSessionError] = useState<string | undefined>();
  const [tries, setTries] = useState(0);
  const token = getToken();

  useEffect(() => {
    if (route.page === "login" || token === null || session !== undefined) return;
    const abort = new AbortController();
    getJson<Session>("/api/session", abort.signal).then(
      (found) => (setSession(found), setSessionError(undefined)),
      (caught: Error) => abort.signal.aborted || setSessionError(caught.message),
    );
    return () => abort.abort();
  }, [route.page, token, session, tries]);

  useEffect(() => {
    if (route.page !== "login" && token === null) navigate(`/login?next=${encodeURIComponent(where)}`, { replace: true });
  }, [route.page, token, where]);

  if (route.page === "login") return <LoginPage next={route.next} onSignedIn={setSession} />;
  if (token !== null && session === undefined && sessionError !== undefined)
    return (
      <main>
        <p role="alert" className="error">
          Could not reach the server: {sessionError}
        </p>
        <button type="button" onClick={() => setTries((n) => n + 1)}>
          Try again
        </button>
      </main>
    );
  if (token === null || session === undefined) return <main className="loading">Loading…</main>;

  const signOut = () => {
    clearToken();
    setSession(undefined);
    navigate("/login");
  };
  return (
    <SessionContext.Provider value={session}>
      <header className="top">
        <a
          className="brand"
          href="/workflows"
          onClick={(event) => {
            event.preventDefault();
            navigate("/workflows");
          }}
        >
          troupe
        </a>
        <nav aria-label="Pages">
          <Link to="/workflows">Workflows</Link>
          {!session.read_only && <Link to="/submit">Submit</Link>}
          {!session.read_only && <Link to="/pools">Pools</Link>}
        </nav>
        <span className="who">
          {session.read_only ? "local history" : `signed in as ${session.user}`}
          {!session.read_only && (
            <button type="button" className="link" onClick={signOut}>
              Sign out
            </button>
          )}
        </span>
      </header>
      {route.page === "list" && <WorkflowListPage />}
      {route.page === "workflow" && <WorkflowPage key={route.id} id={route.id} />}
      {route.page === "logs" && <LogsPage key={`${route.id}\0${route.task}`} id={route.id} task={route.task} />}
      {route.page === "pools" && <PoolsPage />}
      {route.page === "submit" && <SubmitPage />}
      {route.page === "unknown" && (
        <main>
          <h1>Not found</h1>
          <p>No page at {route.path}.</p>
        </main>
      )}
    </SessionContext.Provider>
  );
}
