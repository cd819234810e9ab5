/**
 * The Kubernetes pool (src/runtime/kubernetes/kubernetes-pool.ts and its group) against the real API server,
 * scheduler and kwok of the test cluster (scripts/k8s/up.sh): pods made holding and placed by the real
 * scheduler (events from the informer), a group's headless Service, the launch's Secret owned by its pod, the
 * release as the barrier annotation, exit codes from pod state, an unschedulable member left unplaced, stop
 * (delete, grace then force), logs through the log API, and a sweep of what a dead troupe left. kwok's
 * `troupe.test/*` annotations (the test cluster's hook, not a troupe feature) reach the pods through the
 * pool's pod annotations (a pod template's).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import {
  BARRIER_ANNOTATION,
  initCommand,
  INIT_DIR,
  INIT_LABEL,
  KubernetesPool,
  LAUNCH_DIR,
  POD_INFO_DIR,
} from "../../src/runtime/kubernetes/index.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { Events, launchOf } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-pool-"));
let config: KubeConfig;
let core: CoreV1Api;
const namespace = uniqueNamespace("troupe-pool");

function pool(annotations: Record<string, string>, extra: Partial<ConstructorParameters<typeof KubernetesPool>[0]> = {}): KubernetesPool {
  return new KubernetesPool({ config, home, namespace, podAnnotations: annotations, ...extra });
}

const sessions: RunSession[] = [];
async function session(p: KubernetesPool, runId: string): Promise<RunSession> {
  const s = await p.openSession({ runId, dataDir: home });
  sessions.push(s);
  return s;
}

describe.skipIf(!attempt.cluster)(`the Kubernetes pool ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  beforeAll(async () => {
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    if (config) await deleteNamespace(config, namespace);
    rmSync(home, { recursive: true, force: true });
  });

  it.each(["init", "shell"] as const)(
    "places a group's pods through the scheduler, holds them (%s holder), releases them and reports their exit codes",
    async (holder) => {
      const p = pool({ "troupe.test/run-for": "1500ms", "troupe.test/exit-code": "3" }, { barrierHolder: holder });
      expect(p.capabilities).toMatchObject({ placement: "cluster", localLogs: false, tasksOutliveTroupe: true, defaultMaxParallel: 1000 });
      const run = `run-pair-${holder}`;
      const s = await session(p, run);
      const events = new Events();
      const group = s.openGroup({ name: "pair", members: ["server", "client"] }, events);
      expect(group.id).toContain(`troupe.dev/run=${run}`);
      const keys = ["pair/server/0", "pair/client/0"];
      group.place(
        keys.map((key) => ({
          key,
          taskName: key.split("/")[1]!,
          retryId: 0,
          image: "alpine:3.20",
          resources: { cpu: 0.5, gpu: 0, memoryBytes: 2 ** 20 },
        })),
      );
      await events.until(() => events.placements.size === 2);
      const server = events.placements.get("pair/server/0")!;
      expect(server.address).toMatch(/^10\.244\./);
      expect(server.node).toMatch(/^kwok-node-/);
      expect(server.hostName).toMatch(new RegExp(`^server\\.pair-[0-9a-f]+\\.${namespace}\\.svc\\.cluster\\.local$`));
      const services = await core.listNamespacedService({ namespace, labelSelector: `troupe.dev/run=${run}` });
      expect(services.items).toHaveLength(1);
      expect(services.items[0]!.spec!.clusterIP).toBe("None");
      // Held: created with the barrier annotation and the holder as the command.
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${run}` });
      expect(pods.items.map((pod) => pod.metadata!.annotations![BARRIER_ANNOTATION])).toEqual(["held", "held"]);
      const container = pods.items[0]!.spec!.containers[0]!;
      if (holder === "init") {
        // troupe-init from its ConfigMap, mounted read-only and executable, on nodes of its architecture.
        expect(container.command).toEqual(initCommand(POD_INFO_DIR, LAUNCH_DIR));
        const volume = pods.items[0]!.spec!.volumes!.find((v) => v.configMap)!;
        expect(volume.configMap).toMatchObject({ name: expect.stringMatching(/^troupe-init-[0-9a-f]{16}$/), defaultMode: 0o555 });
        expect(container.volumeMounts).toContainEqual(expect.objectContaining({ name: volume.name, mountPath: INIT_DIR, readOnly: true }));
        expect(pods.items[0]!.spec!.nodeSelector).toEqual({ "kubernetes.io/arch": "amd64" });
        expect(pods.items[0]!.metadata!.labels![INIT_LABEL]).toBe(volume.configMap!.name!.slice("troupe-init-".length));
      } else expect(container.command![0]).toBe("/bin/sh");
      expect(pods.items[0]!.spec!.restartPolicy).toBe("Never");
      for (const key of keys) group.prepare(launchOf(key, events.placements));
      await events.until(() => events.readies.size === 2);
      const secrets = await core.listNamespacedSecret({ namespace, labelSelector: `troupe.dev/run=${run}` });
      expect(secrets.items).toHaveLength(2);
      expect(secrets.items[0]!.metadata!.ownerReferences![0]!.kind).toBe("Pod");
      if (holder === "init")
        expect(Buffer.from(secrets.items[0]!.data!.launch!, "base64").toString()).toContain(
          "env\0PATH=/bin:/usr/bin\0arg\0/bin/sh\0arg\0-c\0arg\0echo hi\0end\0",
        );
      else
        expect(Buffer.from(secrets.items[0]!.data!["launch.sh"]!, "base64").toString()).toContain(
          "exec env -i 'PATH=/bin:/usr/bin' '/bin/sh' '-c' 'echo hi'",
        );
      await group.release(keys);
      const released = await core.listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${run}` });
      expect(released.items.map((pod) => pod.metadata!.annotations![BARRIER_ANNOTATION])).toEqual(["released", "released"]);
      await events.until(() => events.exits.size === 2);
      expect(events.exits.get("pair/server/0")).toEqual({ kind: "exited", code: 3 });
      await s.close();
      const after = await core.listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${run}` });
      expect(after.items.filter((pod) => !pod.metadata!.deletionTimestamp)).toHaveLength(0);
      expect((await core.listNamespacedService({ namespace, labelSelector: `troupe.dev/run=${run}` })).items).toHaveLength(0);
    },
    60_000,
  );

  it("leaves a member the scheduler cannot place unplaced (the engine counts SCHEDULING), and stops it by deleting its pod", async () => {
    const s = await session(pool({}), "run-big");
    const events = new Events();
    const group = s.openGroup({ name: "big", members: ["huge"] }, events);
    group.place([{ key: "big/huge/0", taskName: "huge", retryId: 0, image: "alpine", resources: { cpu: 0, gpu: 64, memoryBytes: 0 } }]);
    const podOf = async () => (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-big" })).items[0];
    for (let i = 0; i < 100 && !(await podOf())?.status?.conditions?.some((c) => c.reason === "Unschedulable"); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await podOf())!.status!.conditions!.find((c) => c.type === "PodScheduled")!.message).toMatch(/Insufficient nvidia.com\/gpu/);
    expect(events.placements.size).toBe(0);
    await group.stop("big/huge/0", 1000);
    expect(events.exits.get("big/huge/0")).toMatchObject({ kind: "start-failed" });
    expect(await podOf()).toBeUndefined();
  }, 30_000);

  it("follows a member's log through the API server and ends it when the pod ends", async () => {
    const s = await session(pool({ "troupe.test/run-for": "2s" }), "run-logs");
    const events = new Events();
    const group = s.openGroup({ name: "solo", members: ["talker"] }, events);
    group.place([{ key: "solo/talker/0", taskName: "talker", retryId: 0, image: "alpine" }]);
    await events.until(() => events.placements.size === 1);
    const pod = (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-logs" })).items[0]!;
    const logDir = mkdtempSync(join(tmpdir(), "troupe-k8s-log-"));
    try {
      const file = join(logDir, "talker.log");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(file, "2026-01-01T00:00:01.000000000Z stdout F first line\n2026-01-01T00:00:02.000000000Z stdout F second line\n");
      await config.makeApiClient((await import("@kubernetes/client-node")).CustomObjectsApi).createNamespacedCustomObject({
        group: "kwok.x-k8s.io",
        version: "v1alpha1",
        namespace,
        plural: "logs",
        body: {
          apiVersion: "kwok.x-k8s.io/v1alpha1",
          kind: "Logs",
          metadata: { name: pod.metadata!.name!, namespace },
          spec: { logs: [{ containers: ["task"], logsFile: file }] },
        },
      });
      group.prepare(launchOf("solo/talker/0", events.placements, { files: [] }));
      await events.until(() => events.readies.size === 1);
      await group.release(["solo/talker/0"]);
      const chunks: Buffer[] = [];
      const stream = group.logs("solo/talker/0");
      await new Promise<void>((resolve, reject) => {
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      expect(Buffer.concat(chunks).toString()).toBe("first line\nsecond line\n");
      expect(events.exits.get("solo/talker/0")).toEqual({ kind: "exited", code: 0 });
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  }, 40_000);

  it("sweeps the pods of a run whose troupe died, and keeps those of live or spared runs", async () => {
    const p = pool({});
    const s = await session(p, "run-live");
    const events = new Events();
    s.openGroup({ name: "g", members: ["a"] }, events).place([{ key: "g/a/0", taskName: "a", retryId: 0, image: "alpine" }]);
    await events.until(() => events.placements.size === 1);
    // A dead troupe's pod: its process token names a process that is gone.
    const dead = await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-live" });
    const body = structuredClone(dead.items[0]!);
    body.metadata = {
      name: "dead-run-pod",
      namespace,
      labels: { ...body.metadata!.labels, "troupe.dev/run": "run-dead" },
      annotations: { ...body.metadata!.annotations, "troupe.dev/run-id": "run-dead", "troupe.dev/process": "999999999:1" },
    };
    body.spec!.nodeName = undefined;
    delete body.status;
    await core.createNamespacedPod({ namespace, body });
    const removed = await pool({}).sweep();
    expect(removed).toEqual([`kubernetes pod ${namespace}/dead-run-pod`]);
    const left = (await core.listNamespacedPod({ namespace })).items.filter((pod) => !pod.metadata!.deletionTimestamp);
    expect(left.map((pod) => pod.metadata!.labels!["troupe.dev/run"])).toContain("run-live");
    expect(left.map((pod) => pod.metadata!.name)).not.toContain("dead-run-pod");
  }, 30_000);
});
