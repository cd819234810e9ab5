/**
 * The API as the page uses it: the token (kept in sessionStorage, so it goes
 * with the tab, not to disk for good) sent as the Bearer header; a 401 sends
 * the user back to the login page. Live data comes from the NDJSON stream
 * route read with fetch: EventSource cannot send the Authorization header,
 * and a token in a URL would end up in logs.
 */
import { navigate } from "./router";
import type { ServerDiagnostic } from "./submit/diagnostics";

const TOKEN_KEY = "troupe.token";

export const getToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (token: string): void => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = (): void => sessionStorage.removeItem(TOKEN_KEY);

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    /** An invalid spec's problems (E_INVALID_SPEC), each at its line. */
    readonly diagnostics: ServerDiagnostic[] = [],
  ) {
    super(message);
  }
}

/** The token was refused: forget it and ask again, coming back here afterwards. */
function backToLogin(): void {
  clearToken();
  const next = location.pathname + location.search;
  navigate(`/login?next=${encodeURIComponent(next)}&expired=1`, { replace: true });
}

async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${getToken() ?? ""}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    backToLogin();
    throw new ApiError("the token is not valid", 401, "E_UNAUTHORIZED");
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string; code?: string; diagnostics?: ServerDiagnostic[] };
    throw new ApiError(body.error ?? `${response.status} ${response.statusText}`, response.status, body.code, body.diagnostics);
  }
  return response;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request(path, { signal })).json() as Promise<T>;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  return (await request(path, { signal })).text();
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return (await request(path, { method: "POST", body: JSON.stringify(body) })).json() as Promise<T>;
}

/** Who a token is, without the redirect to login: the login page's check. */
export async function checkToken(token: string): Promise<Session | undefined> {
  const response = await fetch("/api/session", { headers: { authorization: `Bearer ${token}` } });
  if (response.status === 401) return undefined;
  if (!response.ok) throw new ApiError(`the server answered ${response.status}`, response.status, undefined);
  return (await response.json()) as Session;
}

export interface Session {
  user: string;
  admin: boolean;
  /** `troupe ui`: local history, nothing can be submitted or restarted. */
  read_only: boolean;
}

/** One line of GET /api/workflow/ID/stream (src/server/stream-route.ts). */
export type StreamLine =
  | {
      type: "event";
      group: string | null;
      task: string | null;
      retry_id: number | null;
      from: string | null;
      to: string;
      reason: string;
      time: string;
    }
  | { type: "output"; task: string; retry_id: number; data: string }
  | { type: "end"; status: string };

/** A line of GET /api/workflow/changes: listening; which workflows changed; still there. */
export type ChangesLine = { type: "ready" } | { type: "changed"; ids: string[] } | { type: "idle" };

/** Reads the stream at `path` line by line until it ends or `signal` aborts it. */
export async function followStream<Line = StreamLine>(path: string, onLine: (line: Line) => void, signal: AbortSignal): Promise<void> {
  const response = await request(path, { signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.trim() !== "") onLine(JSON.parse(line) as Line);
    }
  }
}

/** How long after a broken stream the page connects again. */
export const RECONNECT_MS = 2_000;

export const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Follows the stream at `path` to its end line. A connection that breaks first (the server restarted, the network
 * went) is made again, and the stream sent again from its start: `onReconnect` is told first, so that the page
 * drops what it had shown. Refusals (4xx: no such workflow, the token) end it with their error.
 */
export async function followLive(
  path: string,
  onLine: (line: StreamLine) => void,
  signal: AbortSignal,
  onReconnect: () => void,
): Promise<void> {
  for (;;) {
    let ended = false;
    try {
      await followStream(path, (line) => ((ended ||= line.type === "end"), onLine(line)), signal);
      if (ended) return;
    } catch (error) {
      if (signal.aborted || (error instanceof ApiError && error.status < 500)) throw error;
    }
    await pause(RECONNECT_MS, signal);
    if (signal.aborted) return;
    onReconnect();
  }
}

export const workflowApi = (id: string, rest = "") => `/api/workflow/${encodeURIComponent(id)}${rest}`;
