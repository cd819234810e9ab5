/**
 * Reads something again whenever the server says a workflow changed (GET /api/workflow/changes: `ready` once it
 * listens, then `changed` lines), one read at a time (a change told during a read reads once more after it).
 * Where there is no such stream (`troupe ui`'s local history: 404) it reads every `fallbackMs` while the tab is
 * visible instead; a broken stream (the server restarted) is connected again, and its `ready` reads. With
 * `backstopMs`, it also reads that often whatever the stream says (what the token cannot see changes too: the
 * pools' load includes other users' private workflows).
 */
import { ApiError, followStream, pause, RECONNECT_MS, type ChangesLine } from "../api";

export function readOnChange(read: (signal: AbortSignal) => Promise<void>, fallbackMs: number, backstopMs?: number): () => void {
  const abort = new AbortController();
  let timer: number | undefined;
  let reading: Promise<void> | undefined;
  let stale = false;
  const load = async (): Promise<void> => {
    if (reading) return void (stale = true);
    reading = read(abort.signal);
    await reading;
    reading = undefined;
    if (stale && !abort.signal.aborted) {
      stale = false;
      await load();
    }
  };
  const every = (ms: number) => {
    const tick = async (): Promise<void> => {
      if (document.visibilityState === "visible") await load();
      if (!abort.signal.aborted) timer = window.setTimeout(() => void tick(), ms);
    };
    timer = window.setTimeout(() => void tick(), ms);
  };
  const follow = async (): Promise<void> => {
    for (;;) {
      try {
        await followStream<ChangesLine>(
          "/api/workflow/changes",
          (line) => (line.type === "ready" || line.type === "changed") && void load(),
          abort.signal,
        );
      } catch (caught) {
        if (abort.signal.aborted) return;
        if (caught instanceof ApiError && caught.status < 500) {
          window.clearTimeout(timer);
          void load();
          return every(fallbackMs);
        }
      }
      await pause(RECONNECT_MS, abort.signal);
      if (abort.signal.aborted) return;
    }
  };
  if (backstopMs !== undefined) every(backstopMs);
  void follow();
  return () => {
    abort.abort();
    window.clearTimeout(timer);
  };
}
