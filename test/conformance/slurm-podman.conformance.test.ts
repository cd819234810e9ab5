/**
 * The runtime port's conformance suite (port.conformance.ts) against the
 * Slurm runtime on the real test cluster with `node_engine: podman`: each
 * member a podman container of its image on its node (the nodes share this
 * machine's rootful podman and its images: CONTAINERS_CONF as for the
 * container runtime's tests). Skipped only when no cluster can start or
 * podman has no alpine:3.18 here, saying why.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe } from "vitest";
import type { SlurmPool } from "../../src/runtime/slurm/index.js";
import { attemptCluster } from "../slurm/slurm-cluster.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["image", "exists", "alpine:3.18"], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

const attempt = attemptCluster();
const why = attempt.reason ?? (podmanWorks() ? undefined : "podman has no alpine:3.18 here");
if (why) console.warn(`test/conformance/slurm-podman.conformance.test.ts skipped: ${why}`);
// The dead-session child makes the same pool: it finds this cluster by TROUPE_SLURM_CONF.
if (attempt.cluster) process.env.TROUPE_SLURM_CONF ??= attempt.cluster.env.SLURM_CONF;

/** What of run `runId` is left: its jobs that have not ended, its directory on the shared file system, its containers. */
function leftovers(pool: SlurmPool, runId: string): string[] {
  const jobs = execFileSync("squeue", ["-h", "-o", "%i|%j|%T"], { env: attempt.cluster!.env, encoding: "utf8" })
    .split("\n")
    .filter((line) => line.split("|")[1]?.startsWith(`troupe-${runId}-`) && !line.endsWith("|COMPLETING"));
  const containers = execFileSync("podman", ["ps", "--all", "--filter", `label=troupe.run=${runId}`, "--format", "{{.Names}}"], {
    encoding: "utf8",
  })
    .split("\n")
    .filter(Boolean);
  return [...jobs, ...containers, ...(existsSync(pool.runDir(runId)) ? [pool.runDir(runId)] : [])];
}

describe.skipIf(why !== undefined)(`slurm runtime, podman on the nodes (${why ?? "the test cluster"})`, () => {
  let pool: SlurmPool | undefined;
  describeConformance({
    name: "slurm, a batch job per group, podman containers on the nodes",
    backend: "slurm-podman",
    make: async () => (pool = await BACKENDS["slurm-podman"]()),
    leftovers: (runId) => leftovers(pool!, runId),
    image: "alpine:3.18",
    // troupe-init cannot exec it: the shell's 127, as in the container runtime.
    missingBinary: "exit-127",
    imagesWherePrepared: true,
  });
});
