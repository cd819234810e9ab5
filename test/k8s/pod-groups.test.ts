/**
 * Gang scheduling's PodGroups (src/runtime/kubernetes/pod-groups.ts) against the real API server of the test
 * cluster (scripts/k8s/up.sh), with scheduler-plugins' PodGroup CRD (scheduling.x-k8s.io/v1alpha1, pinned:
 * scripts/k8s/gang-crds.sh fetches it from the Go module proxy) installed by this test: a group of several
 * members gets a PodGroup with minMember its size, which the API server validates against the CRD's schema, its
 * pods labelled to join it; a group of one gets none; the group's close and the session's delete it; a gang
 * scheduler whose CRD the cluster lacks fails the group's members saying so. What is not shown here: the gang
 * placement itself (no coscheduling-enabled kube-scheduler runs on the test cluster; docs/k8s-notes.md).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import { KubernetesPool, type KubernetesSettings } from "../../src/runtime/kubernetes/index.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { COSCHEDULING, fetchPodGroupCrd, installPodGroupCrd } from "./gang-fixtures.js";
import { Events } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-gang-"));
const namespace = uniqueNamespace("troupe-gang");

const crd = attempt.cluster ? fetchPodGroupCrd() : { reason: attempt.reason };

describe.skipIf(!crd.file)(`gang scheduling's PodGroups ${crd.reason ? `(skipped: ${crd.reason})` : ""}`, () => {
  let config: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  const sessions: RunSession[] = [];
  const session = async (runId: string, extra: Partial<KubernetesSettings>) => {
    const s = await new KubernetesPool({ config, home, namespace, ...extra }).openSession({ runId, dataDir: home });
    sessions.push(s);
    return s;
  };
  const podGroupsOf = async (run: string) =>
    (
      (await custom.listNamespacedCustomObject({ ...COSCHEDULING, namespace, labelSelector: `troupe.dev/run=${run}` })) as {
        items: Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { minMember: number } }>;
      }
    ).items;

  beforeAll(async () => {
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    custom = config.makeApiClient(CustomObjectsApi);
    await installPodGroupCrd(config, crd.file!);
    await createNamespace(config, namespace);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    if (config) await deleteNamespace(config, namespace);
    rmSync(home, { recursive: true, force: true });
  });

  it("makes a group's PodGroup (minMember its size) before its pods, which join it, and deletes it with the group", async () => {
    const s = await session("run-gang", { gangScheduler: "coscheduling" });
    const events = new Events();
    const group = s.openGroup({ name: "trio", members: ["a", "b", "c"] }, events);
    group.place(["a", "b", "c"].map((task) => ({ key: `trio/${task}/0`, taskName: task, retryId: 0, image: "alpine:3.20" })));
    await events.until(() => events.placements.size + events.exits.size === 3);
    expect([...events.exits]).toEqual([]);
    const [podGroup, ...more] = await podGroupsOf("run-gang");
    expect(more).toEqual([]);
    expect(podGroup!.spec.minMember).toBe(3);
    expect(podGroup!.metadata.labels).toMatchObject({ "troupe.dev/run": "run-gang", "troupe.dev/group": "trio" });
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-gang" })).items;
    expect(pods.map((pod) => pod.metadata!.labels!["scheduling.x-k8s.io/pod-group"])).toEqual(Array(3).fill(podGroup!.metadata.name));
    // The pool names no scheduler: the cluster's default places them (the coscheduling plugin's scheduler would be named).
    expect(pods[0]!.spec!.schedulerName).toBe("default-scheduler");
    await group.close();
    expect(await podGroupsOf("run-gang")).toEqual([]);
  }, 60_000);

  it("gives a group of one no PodGroup, and the session's close deletes every PodGroup of its run", async () => {
    const s = await session("run-gang-2", { gangScheduler: "coscheduling", schedulerName: "default-scheduler" });
    const events = new Events();
    s.openGroup({ name: "solo", members: ["only"] }, events).place([{ key: "solo/only/0", taskName: "only", retryId: 0, image: "alpine" }]);
    s.openGroup({ name: "pair", members: ["x", "y"] }, events).place(
      ["x", "y"].map((task) => ({ key: `pair/${task}/0`, taskName: task, retryId: 0, image: "alpine" })),
    );
    await events.until(() => events.placements.size === 3);
    const made = await podGroupsOf("run-gang-2");
    expect(made.map((g) => [g.metadata.labels["troupe.dev/group"], g.spec.minMember])).toEqual([["pair", 2]]);
    await s.close();
    expect(await podGroupsOf("run-gang-2")).toEqual([]);
  }, 60_000);

  it("is what the CRD's schema takes: the API server refuses a PodGroup whose minMember is not a number", async () => {
    const body = {
      apiVersion: "scheduling.x-k8s.io/v1alpha1",
      kind: "PodGroup",
      metadata: { name: "bad", namespace },
      spec: { minMember: "three" },
    };
    await expect(custom.createNamespacedCustomObject({ ...COSCHEDULING, namespace, body })).rejects.toMatchObject({ code: 422 });
  });

  it("fails the members of a group whose gang scheduler's CRD the cluster lacks, saying so", async () => {
    // KAI's: its CRD is not installed here (Volcano's is, by volcano-pod-groups.test.ts).
    const s = await session("run-kai", { gangScheduler: "kai" });
    const events = new Events();
    s.openGroup({ name: "pair", members: ["x", "y"] }, events).place(
      ["x", "y"].map((task) => ({ key: `pair/${task}/0`, taskName: task, retryId: 0, image: "alpine" })),
    );
    await events.until(() => events.exits.size === 2);
    expect(events.exits.get("pair/x/0")).toMatchObject({
      kind: "start-failed",
      message: expect.stringMatching(/^the API server refused the group's PodGroup \(kai\): 404/),
    });
    expect((await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-kai" })).items).toEqual([]);
  }, 60_000);
});
