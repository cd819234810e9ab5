/**
 * scripts/k8s/up.sh and down.sh keep their contract (as the Slurm and S3 scripts do): up.sh on a running
 * cluster is quick and prints the same settings, restarts a daemon that died (found by its PID file), and
 * refuses bad settings and another port for the same state directory (exit 2, saying what is wrong);
 * down.sh leaves alone a directory up.sh did not make. The cluster is the test cluster CI started.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { givenCluster, kubeConfigFrom, parseExports, type K8sCluster } from "./k8s-cluster.js";

const execFileAsync = promisify(execFile);
const UP = fileURLToPath(new URL("../../scripts/k8s/up.sh", import.meta.url));
const DOWN = fileURLToPath(new URL("../../scripts/k8s/down.sh", import.meta.url));

/** Runs a script with extra settings; resolves with how it ended (never rejects on a non-zero exit). */
async function run(script: string, settings: Record<string, string>) {
  try {
    const { stdout, stderr } = await execFileAsync("bash", [script], { env: { ...process.env, ...settings }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("the scripts' refusals", () => {
  it("up.sh refuses a port that is not a number, and a node count out of range, with exit 2", async () => {
    const port = await run(UP, { TROUPE_K8S_PORT: "https", TROUPE_K8S_DIR: "/nonexistent/troupe-k8s-test" });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain("TROUPE_K8S_PORT must be a number from 1024 to 65000");
    const nodes = await run(UP, { TROUPE_K8S_NODES: "12", TROUPE_K8S_DIR: "/nonexistent/troupe-k8s-test" });
    expect(nodes.code).toBe(2);
    expect(nodes.stderr).toContain("TROUPE_K8S_NODES must be 1 to 9, not '12'");
  });

  it("down.sh leaves alone a directory that up.sh did not make", async () => {
    const dir = mkdtempSync("/var/tmp/troupe-k8s-not-ours-");
    try {
      writeFileSync(`${dir}/keep.txt`, "mine");
      const result = await run(DOWN, { TROUPE_K8S_DIR: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("was not made by scripts/k8s/up.sh");
      expect(readFileSync(`${dir}/keep.txt`, "utf8")).toBe("mine");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/scripts.test.ts (running cluster part) skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`up.sh on a running cluster (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 90_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const settings = () => ({ TROUPE_K8S_DIR: cluster.dir, TROUPE_K8S_PORT: new URL(cluster.server).port });

  it("prints the same settings again, quickly, and keeps every daemon", async () => {
    const before = readFileSync(`${cluster.dir}/run/kube-apiserver.pid`, "utf8");
    const started = Date.now();
    const again = await run(UP, settings());
    expect(again.code, again.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(parseExports(again.stdout)).toEqual(parseExports(readFileSync(`${cluster.dir}/env`, "utf8")));
    expect(parseExports(again.stdout).TROUPE_K8S_KUBECONFIG).toBe(cluster.kubeconfig);
    expect(readFileSync(`${cluster.dir}/run/kube-apiserver.pid`, "utf8")).toBe(before);
  });

  it("refuses another port for the same state directory", async () => {
    const other = await run(UP, { ...settings(), TROUPE_K8S_PORT: "17443" });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`runs on port ${new URL(cluster.server).port}, not 17443`);
  });

  it("restarts a daemon that died, and the cluster schedules again", async () => {
    // The scheduler: the other test files' pods wait for it at most the second or so this takes.
    const pidFile = `${cluster.dir}/run/kube-scheduler.pid`;
    const old = Number(readFileSync(pidFile, "utf8"));
    process.kill(old, "SIGKILL");
    const repaired = await run(UP, settings());
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stderr).toContain("starting kube-scheduler");
    const fresh = Number(readFileSync(pidFile, "utf8"));
    expect(fresh).not.toBe(old);
    expect(readFileSync(`/proc/${fresh}/cmdline`, "utf8")).toContain("kube-scheduler");
    // It answers its health check, as up.sh waited for; and the API server still serves.
    const core = kubeConfigFrom(cluster.kubeconfig).makeApiClient(CoreV1Api);
    expect((await core.listNode()).items).toHaveLength(cluster.nodes);
  });
});
