/**
 * The troupe homes of a run suite whose cases run on every target (test/run/slurm-target.ts for the slurm
 * one), and the test files' lock on the cluster while its slurm cases run there.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ensureBuilt, TestHome, type RunTarget } from "./helpers.js";
import { CLUSTER_LOCK_WAIT_MS, holdCluster, leftoverJobs, SLURM, slurmHomeParent } from "./slurm-target.js";

/**
 * Makes a suite's homes before its tests (after the build) and removes them after: one here for the local
 * targets, one on the cluster's shared directory for the slurm target (every node sees the tasks' outputs
 * and logs there). After the tests no job of the cluster's home may be left in Slurm's queue: what is, is
 * cancelled, and fails the file. Call at the top of a file; the result gives a target's home once they exist.
 */
export function suiteHomes(): (target: RunTarget) => TestHome {
  let local: TestHome | undefined;
  let onCluster: TestHome | undefined;
  beforeAll(async () => {
    await ensureBuilt();
    local = new TestHome();
    if (SLURM.cluster) onCluster = new TestHome(slurmHomeParent());
  }, 200_000);
  afterAll(async () => {
    local?.remove();
    if (!onCluster) return;
    const left = await leftoverJobs(onCluster.home);
    onCluster.remove();
    expect(left, "jobs left in Slurm's queue").toEqual([]);
  }, 60_000);
  return (target) => {
    const home = target === "slurm" ? onCluster : local;
    if (!home) throw new Error(`no home for target ${target} (is it skipped, or used before the suite's beforeAll?)`);
    return home;
  };
}

/**
 * Holds the test files' lock on the cluster shared from before the tests of the current block (when `target`
 * is slurm) to after them: a test of another file that kills a node's slurmd or drains one waits for them.
 */
export function holdClusterDuring(target: RunTarget): void {
  if (target !== "slurm") return;
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await holdCluster();
  }, CLUSTER_LOCK_WAIT_MS);
  afterAll(() => release?.());
}
