/**
 * The Slurm test cluster as a target of the run suites (tutorial, semantics, same-port) beside the local ones: present
 * only when CI's cluster is (TROUPE_SLURM_CONF, scripts/test.sh); otherwise its blocks are skipped with the
 * reason in their titles and on stderr. Runs on it need troupe's home where every node sees it (the
 * cluster's shared directory), the slurm runtime, and the login node's address on the cluster's bridge,
 * where the members' helpers connect back.
 */
import { execFileSync } from "node:child_process";
import { homeIdentity } from "../../src/runtime/home-identity.js";
import { givenCluster, lockCluster, type SlurmCluster } from "../slurm/slurm-cluster.js";

export const SLURM = givenCluster();

const cluster = (): SlurmCluster => {
  if (!SLURM.cluster) throw new Error(`the slurm target was used without a cluster: ${SLURM.reason}`);
  return SLURM.cluster;
};

/** `troupe run`'s arguments for the cluster. */
export function slurmArgs(): string[] {
  return ["--runtime", "slurm", "--listen-address", cluster().loginAddress];
}

/** The environment of a `troupe run` on the cluster (TROUPE_RUNTIME, which the helpers set to host, unset). */
export function slurmEnv(): Record<string, string | undefined> {
  return { SLURM_CONF: cluster().env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster().shared, TROUPE_RUNTIME: undefined };
}

/**
 * Holds the test files' lock on the cluster shared (test/slurm/slurm-cluster.ts lockCluster) while this file's
 * runs are there: a test of another file that kills a node's slurmd or drains one waits for them, and they for it.
 */
export function holdCluster(): Promise<() => Promise<void>> {
  return lockCluster(cluster(), "shared");
}

/** How long a file may wait for another's test that disturbs the cluster (a killed slurmd: about a minute). */
export const CLUSTER_LOCK_WAIT_MS = 300_000;

/** The directory for a test file's home on the cluster: seen at the same path by every node. */
export function slurmHomeParent(): string {
  return cluster().shared;
}

/** Why target `target` cannot run here (undefined: it can). */
export function skipReason(target: string): string | undefined {
  return target === "slurm" ? SLURM.reason : undefined;
}

/** A describe block's name for the target, with the reason when it is skipped. */
export function targetTitle(target: string): string {
  const reason = skipReason(target);
  return reason ? `${target} (skipped: ${reason})` : target;
}

/** Says once, on stderr, why the slurm target is skipped in `file`. */
export function warnIfSkipped(file: string): void {
  if (SLURM.reason) console.warn(`${file}: the slurm target is skipped: ${SLURM.reason}`);
}

/** The jobs Slurm still has (pending, running or completing) of runs of troupe home `home`: `ID|NAME|STATE`. */
export function jobsOfHome(home: string): string[] {
  const owner = `owner=${homeIdentity(home)};`;
  return execFileSync("squeue", ["-h", "-o", "%i|%j|%T|%k"], { env: cluster().env, encoding: "utf8", timeout: 30_000 })
    .split("\n")
    .filter((line) => line.includes(owner))
    .map((line) => line.split("|").slice(0, 3).join("|"));
}

/**
 * Waits up to `ms` for Slurm to have no job of `home` left (a job ends a moment after its last member:
 * COMPLETING); cancels what is still there then, and says what it was (empty: nothing was left).
 */
export async function leftoverJobs(home: string, ms = 30_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  let jobs = jobsOfHome(home);
  while (jobs.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    jobs = jobsOfHome(home);
  }
  if (jobs.length > 0)
    execFileSync(
      "scancel",
      jobs.map((j) => j.split("|")[0]!.split("+")[0]!),
      { env: cluster().env, timeout: 30_000 },
    );
  return jobs;
}
