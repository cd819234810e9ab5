/**
 * The test files' lock on the one Slurm test cluster (slurm-cluster.ts lockCluster): runs of several files
 * share it; a test that disturbs the cluster (kills a slurmd, drains a node) holds it alone, waiting for the
 * runs there and making new ones wait; a holder that dies lets go. On a lock file of its own, no cluster needed.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../run/helpers.js";
import { lockCluster, type SlurmCluster } from "./slurm-cluster.js";

const dir = mkdtempSync(join(tmpdir(), "troupe-cluster-lock-"));
const cluster = { dir } as SlurmCluster;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether `promise` settles within `ms`. */
const settlesWithin = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe("the test files' lock on the Slurm test cluster", () => {
  it("is held shared by several at once; exclusive waits for every shared holder, and shared for the exclusive one", async () => {
    const first = await lockCluster(cluster, "shared");
    const second = await lockCluster(cluster, "shared");
    const exclusive = lockCluster(cluster, "exclusive");
    expect(await settlesWithin(exclusive, 500)).toBe(false);
    await first();
    expect(await settlesWithin(exclusive, 300)).toBe(false);
    await second();
    const releaseExclusive = await exclusive;
    const shared = lockCluster(cluster, "shared");
    expect(await settlesWithin(shared, 500)).toBe(false);
    await releaseExclusive();
    await (
      await shared
    )();
  });

  it("a holder that dies lets go", { timeout: 60_000 }, async () => {
    // A process of its own takes the lock exclusive through lockCluster, then is killed without letting it go.
    const child = spawn(
      join(ROOT, "node_modules", ".bin", "vite-node"),
      [join(ROOT, "test", "slurm", "fixtures", "hold-cluster-lock.ts")],
      {
        cwd: ROOT,
        env: { ...process.env, TROUPE_LOCK_DIR: dir },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise((resolve) => child.stdout.once("data", resolve));
    // Under that lock, nobody else gets it.
    const mine = lockCluster(cluster, "shared");
    expect(await settlesWithin(mine, 500)).toBe(false);
    child.kill("SIGKILL");
    expect(await settlesWithin(mine, 5_000)).toBe(true);
    await (
      await mine
    )();
  });
});
