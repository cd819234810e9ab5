/**
 * Gang scheduling enforced on the test cluster: scheduler-plugins' kube-scheduler with the coscheduling plugin
 * (built by scripts/k8s/coscheduling-build.sh, pinned), started by this test as a second scheduler under a name
 * of its own (it places only the pods that name it, so no other test is touched), with the PodGroup CRD
 * installed. A group whose members cannot all be placed at once has none placed (each member's unplaced
 * reason the plugin's "cannot find enough sibling pods"), where the cluster's default scheduler, without a
 * gang, places those that fit; a group that fits is placed whole. Skipped, saying why, without the binary.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import { KubernetesPool, type KubernetesSettings } from "../../src/runtime/kubernetes/index.js";
import { coschedulingScheduler, fetchPodGroupCrd, installPodGroupCrd } from "./gang-fixtures.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { Events } from "./pool-events.js";

const attempt = givenCluster();
const scheduler = coschedulingScheduler();
const crd = attempt.cluster && scheduler.bin ? fetchPodGroupCrd() : { reason: attempt.reason ?? scheduler.reason };
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-gang-on-"));
const namespace = uniqueNamespace("troupe-gang-on");
const schedulerName = `troupe-gang-${process.pid}`;

describe.skipIf(!crd.file)(`gang scheduling enforced by coscheduling ${crd.reason ? `(skipped: ${crd.reason})` : ""}`, () => {
  let config: KubeConfig;
  let child: ChildProcess | undefined;
  const sessions: RunSession[] = [];
  const session = async (runId: string, extra: Partial<KubernetesSettings>) => {
    const s = await new KubernetesPool({ config, home, namespace, ...extra }).openSession({ runId, dataDir: home });
    sessions.push(s);
    return s;
  };
  /** A group of `size` members asking `cpu` each, placed through `extra`'s scheduler; its events. */
  const placeGroup = async (runId: string, size: number, cpu: number, extra: Partial<KubernetesSettings>) => {
    const s = await session(runId, extra);
    const events = new Events();
    const tasks = Array.from({ length: size }, (_, i) => `m${i}`);
    s.openGroup({ name: "gang", members: tasks }, events).place(
      tasks.map((task) => ({
        key: `gang/${task}/0`,
        taskName: task,
        retryId: 0,
        image: "alpine",
        resources: { cpu, gpu: 0, memoryBytes: 0 },
      })),
    );
    return events;
  };

  beforeAll(async () => {
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    await installPodGroupCrd(config, crd.file!);
    await createNamespace(config, namespace);
    const settings = join(home, "scheduler.yaml");
    const gang = "      enabled: [{name: Coscheduling}]\n";
    writeFileSync(
      settings,
      `apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nleaderElection:\n  leaderElect: false\n` +
        `clientConnection:\n  kubeconfig: ${attempt.cluster!.kubeconfig}\nprofiles:\n- schedulerName: ${schedulerName}\n  plugins:\n` +
        `    queueSort:\n${gang}      disabled: [{name: "*"}]\n    preFilter:\n${gang}    postFilter:\n${gang}    permit:\n${gang}    reserve:\n${gang}` +
        `  pluginConfig:\n  - name: Coscheduling\n    args:\n      permitWaitingTimeSeconds: 10\n`,
    );
    const log = join(home, "scheduler.log");
    child = spawn("sh", ["-c", `exec "$0" --config "$1" --secure-port 0 > "$2" 2>&1`, scheduler.bin!, settings, log], { stdio: "ignore" });
    for (let i = 0; i < 300 && !readFileSync(log, { encoding: "utf8", flag: "a+" }).includes("Starting Kubernetes Scheduler"); i++) {
      if (child.exitCode !== null) throw new Error(`the coscheduling scheduler ended: ${readFileSync(log, "utf8")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    if (child?.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    if (config) await deleteNamespace(config, namespace);
    rmSync(home, { recursive: true, force: true });
  });

  // Four members of 5 CPUs on three nodes of 8: one node takes one, so at most three fit at once.
  it("places none of a group that cannot be placed whole, saying why, where the default scheduler places some", async () => {
    const gang = await placeGroup("run-gang-whole", 4, 5, { gangScheduler: "coscheduling", schedulerName });
    const loose = await placeGroup("run-loose", 4, 5, {});
    await loose.until(() => loose.placements.size >= 1 && loose.unplacedReasons.size >= 1, 30_000);
    await gang.until(() => gang.unplacedReasons.size === 4, 30_000);
    expect(gang.placements.size).toBe(0);
    // The coscheduling plugin's words: the gang rejected, or not all of its pods there yet.
    for (const reason of gang.unplacedReasons.values())
      expect(reason).toMatch(/PodGroup \S+ gets rejected|optimistic rejection in PostFilter|cannot find enough sibling pods/);
    for (const s of sessions.splice(0)) await s.close();
  }, 90_000);

  it("places a group that fits, every member of it", async () => {
    const gang = await placeGroup("run-gang-fits", 3, 1, { gangScheduler: "coscheduling", schedulerName });
    await gang.until(() => gang.placements.size === 3, 30_000);
    expect(gang.exits.size).toBe(0);
  }, 60_000);
});
