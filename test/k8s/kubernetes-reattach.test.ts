/**
 * The Kubernetes pool across a troupe restart and against the API server's refusals, on the test cluster
 * (scripts/k8s/up.sh): a second pool (a restarted troupe) opens a group by the durable id the first recorded
 * (its label selector) and re-attaches a released member, whose end it then reports; a member whose pod is
 * gone cannot be re-attached; an image that cannot be pulled ends the attempt (the kubelet's reason) and its
 * pod is deleted; an eviction and an OOM kill are told apart; the API server's 422 (a bad annotation), 403 (a
 * user who may not create pods) and 401 (credentials refused) each said as what they are.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import { KubernetesPool, type KubernetesSettings } from "../../src/runtime/kubernetes/index.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, tokenKubeConfig, uniqueNamespace } from "./k8s-cluster.js";
import { Events, launchOf } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-reattach-"));
const namespace = uniqueNamespace("troupe-reattach");
let config: KubeConfig;
let core: CoreV1Api;
const sessions: RunSession[] = [];

function pool(podAnnotations: Record<string, string>, extra: Partial<KubernetesSettings> = {}): KubernetesPool {
  return new KubernetesPool({ config, home, namespace, podAnnotations, ...extra });
}
async function session(p: KubernetesPool, runId: string, resumed = false): Promise<RunSession> {
  const s = await p.openSession({ runId, dataDir: home, keepTasks: true, resumed });
  sessions.push(s);
  return s;
}
const member = (key: string) => ({ key, taskName: key.split("/")[1]!, retryId: Number(key.split("/")[2]), image: "alpine" });

describe.skipIf(!attempt.cluster)(
  `the Kubernetes pool, restarted and refused ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`,
  () => {
    beforeAll(async () => {
      config = kubeConfigFrom(attempt.cluster!.kubeconfig);
      core = config.makeApiClient(CoreV1Api);
      await createNamespace(config, namespace);
    });
    afterAll(async () => {
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      if (config) await deleteNamespace(config, namespace);
      rmSync(home, { recursive: true, force: true });
    }, 90_000);

    it("re-attaches a released member by the group's durable id after a restart, and reports its end", async () => {
      const annotations = { "troupe.test/run-for": "4s", "troupe.test/exit-code": "5" };
      const first = await session(pool(annotations), "run-restart");
      const events = new Events();
      const group = first.openGroup({ name: "g", members: ["a"] }, events);
      group.place([member("g/a/0")]);
      await events.until(() => events.placements.size === 1);
      const launch = launchOf("g/a/0", events.placements);
      group.prepare(launch);
      await events.until(() => events.readies.size === 1);
      await group.release(["g/a/0"]);
      // A new troupe process: another pool, the recorded id.
      const second = await session(pool(annotations), "run-restart", true);
      const again = new Events();
      const found = second.openGroup({ name: "g", members: ["a"] }, again, group.id);
      expect(found.id).toBe(group.id);
      expect(await found.reattach(launch)).toBe(true);
      await again.until(() => again.exits.size === 1);
      expect(again.exits.get("g/a/0")).toEqual({ kind: "exited", code: 5 });
      // A member whose pod is gone cannot be found again.
      const other = second.openGroup({ name: "h", members: ["b"] }, new Events());
      expect(await other.reattach(launchOf("h/b/0", new Map()))).toBe(false);
    }, 40_000);

    it("ends an attempt whose image cannot be pulled with the kubelet's reason, and deletes its pod", async () => {
      const s = await session(
        pool({ "troupe.test/waiting-reason": "ErrImagePull", "troupe.test/waiting-message": "manifest unknown" }),
        "run-pull",
      );
      const events = new Events();
      s.openGroup({ name: "g", members: ["a"] }, events).place([member("g/a/0")]);
      await events.until(() => events.exits.size === 1);
      expect(events.exits.get("g/a/0")).toEqual({ kind: "image-pull", message: "ErrImagePull: manifest unknown" });
      const gone = async () => (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-pull" })).items.length === 0;
      for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await gone()).toBe(true);
    }, 30_000);

    it("tells an eviction from an OOM kill", async () => {
      const evicted = await session(pool({ "troupe.test/evict-after": "300ms" }), "run-evict");
      const oom = await session(
        pool({ "troupe.test/run-for": "300ms", "troupe.test/exit-code": "137", "troupe.test/reason": "OOMKilled" }),
        "run-oom",
      );
      const results = await Promise.all(
        [evicted, oom].map(async (s) => {
          const events = new Events();
          const group = s.openGroup({ name: "g", members: ["a"] }, events);
          group.place([member("g/a/0")]);
          await events.until(() => events.placements.size === 1);
          group.prepare(launchOf("g/a/0", events.placements));
          await events.until(() => events.readies.size === 1 || events.exits.size === 1);
          if (events.readies.size === 1) await group.release(["g/a/0"]).catch(() => undefined);
          await events.until(() => events.exits.size === 1);
          return events.exits.get("g/a/0");
        }),
      );
      expect(results[0]).toEqual({ kind: "evicted", message: "The node was low on resource: memory." });
      expect(results[1]).toEqual({ kind: "exited", code: 137, reason: "OOMKilled" });
    }, 30_000);

    it("says what the API server refused: 422 a bad pod, 403 a user who may not create pods, 401 refused credentials", async () => {
      const bad = await session(pool({ "not a key!": "x" }), "run-422");
      const events = new Events();
      bad.openGroup({ name: "g", members: ["a"] }, events).place([member("g/a/0")]);
      await events.until(() => events.exits.size === 1);
      expect(events.exits.get("g/a/0")).toMatchObject({
        kind: "start-failed",
        message: expect.stringMatching(/^the API server refused the pod: 422: .*not a key!/),
      });

      const cluster = attempt.cluster!;
      // The shell holder: with troupe-init's, the ConfigMap is refused first (init-configmap.test.ts).
      const limited = new KubernetesPool({
        config: kubeConfigFrom(cluster.limitedKubeconfig),
        home,
        namespace: cluster.limitedNamespace,
        barrierHolder: "shell",
      });
      const s = await limited.openSession({ runId: "run-403", dataDir: home });
      sessions.push(s);
      const refused = new Events();
      s.openGroup({ name: "g", members: ["a"] }, refused).place([member("g/a/0")]);
      await refused.until(() => refused.exits.size === 1);
      expect(refused.exits.get("g/a/0")).toMatchObject({
        kind: "start-failed",
        message: expect.stringMatching(/^the API server refused the pod: 403: .*cannot create resource "pods"/),
      });

      const stranger = new KubernetesPool({ config: tokenKubeConfig(cluster, "not-a-token"), home, namespace });
      await expect(stranger.openSession({ runId: "run-401", dataDir: home })).rejects.toMatchObject({ code: 401 });
    }, 40_000);
  },
);
