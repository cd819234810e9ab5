/** Running many transfers with a bound on how many run at once, each retried while its failure is transient. */
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { isTransient } from "./store-errors.js";

export interface RetryPolicy {
  /** Tries per job in all (the SDK retries each request within a try too). */
  attempts: number;
  /** Wait before the second try; doubled for each later one. */
  firstDelayMs: number;
}

/** `job` again while it fails transiently and tries are left (the store went away a moment, a 5xx). */
export async function withRetries<T>(job: (signal: AbortSignal) => Promise<T>, policy: RetryPolicy, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await job(signal);
    } catch (error) {
      if (attempt >= policy.attempts || signal.aborted || !isTransient(error)) throw error;
      await sleep(policy.firstDelayMs * 2 ** (attempt - 1), undefined, { signal });
    }
  }
}

/**
 * Runs every job, at most `limit` at once; the first failure stops the rest
 * (their signal aborts) and is what this rejects with.
 */
export async function runBounded<T>(jobs: Iterable<(signal: AbortSignal) => Promise<T>>, limit: number, signal: AbortSignal): Promise<T[]> {
  const stop = new AbortController();
  // Every job in flight listens to it, some several times (the SDK's request, a body being written, a retry's wait):
  // past Node's default of 10 that is not a leak.
  setMaxListeners(Math.max(10, 4 * limit), stop.signal);
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const iterator = jobs[Symbol.iterator]();
  const results: T[] = [];
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    for (let next = iterator.next(); !next.done && !failure; next = iterator.next()) {
      try {
        results.push(await next.value(stop.signal));
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (failure) throw failure.error;
  if (signal.aborted) throw signal.reason;
  return results;
}
