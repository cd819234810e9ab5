/**
 * Time bounds as ratios, for the tests whose point is a cost (linear, or stopped at a limit): the case is
 * measured right after a baseline of the same kind, so that a busy machine slows both alike; a fixed bound
 * in milliseconds would fail on a slow or loaded machine and say nothing on a fast one.
 */
import { expect } from "vitest";

/** What `work` returns and how many milliseconds it took. */
export async function timed<T>(work: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/**
 * Runs `baseline` then `subject` (the baseline first also warms up the code both share) and expects the
 * subject to take less than `factor` times the baseline. Returns the subject's value.
 */
export async function expectCostWithin<T>(
  what: string,
  factor: number,
  baseline: () => Promise<unknown> | unknown,
  subject: () => Promise<T> | T,
): Promise<T> {
  const base = await timed(baseline);
  const measured = await timed(subject);
  // At least 50 ms of baseline: below that, one garbage collection or one descheduling decides.
  const allowed = factor * Math.max(base.ms, 50);
  expect(
    measured.ms,
    `${what}: ${measured.ms.toFixed(1)} ms against a baseline of ${base.ms.toFixed(1)} ms (at most ${factor}x)`,
  ).toBeLessThan(allowed);
  return measured.value;
}
