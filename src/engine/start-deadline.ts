/**
 * The start timeout (FAILED_START_TIMEOUT, OSMO's 3005): a member whose
 * sandbox is not up (ready at the barrier) this long after the engine asked
 * the runtime to prepare it ends `start-timeout`, and what is left of it is
 * stopped. A runtime that hangs while it makes a sandbox (a `podman run` that
 * never returns, a pod that never starts) then ends its attempt instead of
 * holding its group, its resources and the run for ever. Data staged
 * meanwhile has no part in it: the barrier waits for that on its own
 * (group-launch.ts).
 */
import type { Clock } from "./clock.js";
import type { AttemptEvents } from "./group-channel.js";
import type { LiveAttempt } from "./run-state.js";

/** The default, as OSMO's `max_pod_restart_limit`: generous enough for a large image's pull. */
export const DEFAULT_START_TIMEOUT_MS = 30 * 60_000;

/** How a start timeout reads in a reason: whole minutes as `30m`, the rest in seconds. */
function describeStartTimeout(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 100) / 10}s`;
}

/** Arms the attempt's start timeout (0: none), from now: cleared once it is ready or has ended. */
export function armStartDeadline(clock: Clock, timeoutMs: number, attempt: LiveAttempt, events: AttemptEvents): void {
  if (timeoutMs <= 0) return;
  const timer = clock.setTimer(() => {
    if (events.wasReady || events.ended) return;
    const limit = describeStartTimeout(timeoutMs);
    events.end({ kind: "start-timeout", message: `its sandbox was not up ${limit} after it was asked for (the start timeout, ${limit})` });
    // Not up, so not stopped by stopAttempt (which waits for it to come up): the runtime is told now.
    void attempt.handle.stop(attempt.key, 0);
  }, timeoutMs);
  // `ready` settles either way: true when it came up, false when it ended first.
  void events.ready.then(() => clock.clearTimer(timer));
}
