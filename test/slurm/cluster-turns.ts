/**
 * Taking turns on the one test cluster (apart from slurm-cluster.ts, which processes outside vitest import
 * too: the conformance suite's dead-session child).
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll } from "vitest";
import type { SlurmCluster } from "./slurm-cluster.js";

/**
 * The cluster is one per machine, and its tests change it (drain nodes, kill a slurmd, preempt every job
 * of `main`): test files take turns, each from its first test to its last. Call it first in a describe (its
 * hooks then come first, and its release last). The lock is flock(1)'s, held by a child process that ends,
 * and lets go, when its stdin closes: at the end of the file, or when this process dies however it dies.
 */
export function takeTurnsOnCluster(cluster: SlurmCluster | undefined): void {
  let release: (() => void) | undefined;
  beforeAll(async () => {
    if (!cluster) return;
    const holder = spawn("flock", ["-x", `${cluster.dir}/tests.lock`, "sh", "-c", "echo held; exec cat"], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once("data", () => resolve());
      holder.once("error", reject);
      holder.once("exit", (code) => reject(new Error(`flock on the cluster's test lock ended (${code})`)));
    });
    release = () => holder.stdin.end();
  }, 30 * 60_000);
  afterAll(() => release?.());
}
