/**
 * How a `troupe run` learns that `troupe cancel RUN` was asked in another
 * terminal: the request is written on the run's row (store/cancel-requests.ts)
 * and the run's process looks for it a few times a second. A request in the
 * store rather than a signal: it carries a reason and `--force`, needs no
 * process of the same user or PID namespace, and is never delivered to a
 * process that merely reuses the run's PID.
 */
import type { CancelRequest, RunStore } from "../store/index.js";

/** How often the driving process reads the request (a cancel takes at most this long to be seen). */
export const CANCEL_POLL_MS = 200;

/** Calls `onRequest` for a new request, and again when one is made forced; returns the function that stops watching. */
export function watchCancelRequests(store: RunStore, runId: string, onRequest: (request: CancelRequest) => void): () => void {
  let seen: CancelRequest | undefined;
  const timer = setInterval(() => {
    let request: CancelRequest | undefined;
    try {
      request = store.cancelRequests.get(runId);
    } catch {
      return; // the database busy or closing: the next look finds it
    }
    if (!request || (seen && (seen.force || !request.force))) return;
    seen = request;
    onRequest(request);
  }, CANCEL_POLL_MS);
  // Watching must not keep the process alive once the run is over.
  timer.unref();
  return () => clearInterval(timer);
}
