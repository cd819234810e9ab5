/**
 * The runtime port's conformance suite (port.conformance.ts) against the
 * Slurm runtime on the real test cluster (scripts/slurm/up.sh: three nodes,
 * each its own network namespace and address): each group a batch job, its
 * members' helpers connecting back over TCP. Skipped only when no cluster
 * can start here, saying why.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe } from "vitest";
import type { SlurmPool } from "../../src/runtime/slurm/index.js";
import { attemptCluster, lockCluster } from "../slurm/slurm-cluster.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/conformance/slurm.conformance.test.ts skipped: ${attempt.reason}`);
// The dead-session child makes the same pool: it finds this cluster by TROUPE_SLURM_CONF.
if (attempt.cluster) process.env.TROUPE_SLURM_CONF ??= attempt.cluster.env.SLURM_CONF;

/** What of run `runId` is left: its jobs that have not ended, its directory on the shared file system. */
function leftovers(pool: SlurmPool, runId: string): string[] {
  const jobs = execFileSync("squeue", ["-h", "-o", "%i|%j|%T"], { env: attempt.cluster!.env, encoding: "utf8" })
    .split("\n")
    .filter((line) => line.split("|")[1]?.startsWith(`troupe-${runId}-`) && !line.endsWith("|COMPLETING"));
  return [...jobs, ...(existsSync(pool.runDir(runId)) ? [pool.runDir(runId)] : [])];
}

describe.skipIf(!attempt.cluster)(`slurm runtime (${attempt.reason ?? "the test cluster"})`, () => {
  let pool: SlurmPool | undefined;
  // The test files' lock on the cluster, shared: a test of another file that kills a slurmd or drains a node waits.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(attempt.cluster!, "shared");
  }, 300_000);
  afterAll(() => release?.());
  describeConformance({
    name: "slurm, a batch job per group",
    backend: "slurm",
    make: async () => (pool = await BACKENDS.slurm()),
    leftovers: (runId) => leftovers(pool!, runId),
    image: "alpine:3.18",
    // Each member runs in troupe's host sandbox on its node: a command it cannot find is the shell's 127 there too.
    missingBinary: "exit-127",
  });
});
