/**
 * Runs for the conformance cases: each case opens its runs (a data directory
 * and a session) here; after each case they are closed and removed, and
 * every group of theirs must have kept the port's promises (group-probe.ts).
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { afterEach, expect } from "vitest";
import type { PoolBackend, RunContext, RunSession } from "../../src/port/index.js";
import { random } from "../run/helpers.js";
import { GroupProbe } from "./group-probe.js";
import type { OpenRun } from "./target.js";

/** For a describe block: `openRun` for its cases, over the pool `pool()` gives, with launches of `image`. */
export function useRuns(pool: () => PoolBackend, image: string): OpenRun {
  const opened: Array<{ session: RunSession; dir: string; probes: GroupProbe[] }> = [];

  afterEach(async () => {
    const runs = opened.splice(0);
    for (const { session } of runs) await session.close();
    for (const { dir } of runs) rmSync(dir, { recursive: true, force: true });
    // Every case's group kept the port's promises (no unknown key, one exit each, nothing after it).
    expect(runs.flatMap((r) => r.probes.flatMap((p) => p.violations))).toEqual([]);
  }, 60_000);

  /** A new run (or, given `dataDir`, a run's next session): its data directory, outside /tmp (a sandbox has its own). */
  return async (extra: Partial<RunContext> = {}) => {
    const dir = extra.dataDir ?? mkdtempSync("/var/tmp/troupe-conf-");
    // Tasks may run as another user (nobody): they reach their output directories through it.
    chmodSync(dir, 0o755);
    const run: RunContext = { runId: `conf-${random()}`, dataDir: dir, ...extra };
    const session = await pool().openSession(run);
    const probes: GroupProbe[] = [];
    opened.push({ session, dir, probes });
    return {
      session,
      run,
      group: (name, tasks, id) => {
        const probe = new GroupProbe(session, run, name, tasks, { image }, id);
        probes.push(probe);
        return probe;
      },
    };
  };
}
