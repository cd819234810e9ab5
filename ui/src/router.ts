/**
 * The UI's routes, read from the address bar (the server answers each of
 * these paths with index.html: src/server/ui-route.ts UI_ROUTES):
 *   /login?next=PATH             the token
 *   / and /workflows             the list
 *   /workflows/ID                one workflow
 *   /workflows/ID/logs?task=T    its logs, followed live
 *   /pools                       the server's pools and their load
 *   /submit                      a workflow to check, dry-run and submit
 */
import { useSyncExternalStore } from "react";

export type Route =
  | { page: "login"; next: string | undefined }
  | { page: "list" }
  | { page: "workflow"; id: string }
  | { page: "logs"; id: string; task: string | undefined }
  | { page: "pools" }
  | { page: "submit" }
  | { page: "unknown"; path: string };

export function parseRoute(path: string, search: string): Route {
  const query = new URLSearchParams(search);
  if (path === "/login") return { page: "login", next: query.get("next") ?? undefined };
  if (path === "/" || path === "/workflows" || path === "/workflows/") return { page: "list" };
  if (path === "/pools") return { page: "pools" };
  if (path === "/submit") return { page: "submit" };
  const match = /^\/workflows\/([^/]+)(\/logs)?\/?$/.exec(path);
  if (match) {
    const id = decodeURIComponent(match[1]!);
    return match[2] ? { page: "logs", id, task: query.get("task") ?? undefined } : { page: "workflow", id };
  }
  return { page: "unknown", path };
}

const CHANGED = "troupe:navigate";

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(CHANGED, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(CHANGED, onChange);
  };
}

const here = () => location.pathname + location.search;

/** The address bar's path and query, re-read whenever it changes. */
export function useLocation(): string {
  return useSyncExternalStore(subscribe, here);
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === here()) return;
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGED));
}

export const workflowPath = (id: string) => `/workflows/${encodeURIComponent(id)}`;
export const logsPath = (id: string, task?: string) =>
  `${workflowPath(id)}/logs${task === undefined ? "" : `?task=${encodeURIComponent(task)}`}`;
