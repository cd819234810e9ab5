/**
 * A lost node on the test cluster (scripts/k8s/up.sh): kwok manages the nodes labelled type=kwok, so taking the
 * label away is a kubelet that stops answering. The real node lifecycle controller then marks the node's Ready
 * condition Unknown, taints it unreachable and marks its pods not Ready, and the taint manager evicts them, as
 * on a cluster whose node died (troupe reads that as the backend's failure); a force delete (grace 0) removes
 * a pod there, which no kubelet will. The test makes a node of its own, tainted
 * so that no other test's pod lands on it, and removes it.
 */
import { CoreV1Api, makeInformer, type KubeConfig, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podOutcome } from "../../src/runtime/kubernetes/index.js";
import { deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace, type K8sCluster } from "./k8s-cluster.js";

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/node-lost.test.ts skipped: ${attempt.reason}`);
const TAINT = { key: "troupe.test/dedicated", value: "lost-node", effect: "NoSchedule" };

describe.skipIf(!attempt.cluster)(`a lost node (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 90_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const namespace = uniqueNamespace("troupe-node-lost-test");
  const nodeName = `kwok-lost-${process.pid}`;
  let admin: KubeConfig;
  let core: CoreV1Api;

  /** Follows one object of `path` with an informer until `done` holds; resolves with it. */
  async function until<T extends V1Node | V1Pod>(path: string, list: () => Promise<{ items: T[] }>, done: (o: T) => boolean, what: string) {
    const informer = makeInformer<T>(admin, path, list as never);
    const found = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within 60 s`)), 60_000);
      const look = (o: T) => {
        if (!done(o)) return;
        clearTimeout(timer);
        resolve(o);
      };
      informer.on("add", look);
      informer.on("update", look);
      informer.on("error", (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
    });
    await informer.start();
    try {
      return await found;
    } finally {
      await informer.stop();
    }
  }
  const ready = (node: V1Node) => node.status?.conditions?.find((c) => c.type === "Ready")?.status;
  const watchNode = (done: (n: V1Node) => boolean, what: string) =>
    until<V1Node>(
      "/api/v1/nodes",
      () => core.listNode({ fieldSelector: `metadata.name=${nodeName}` }),
      (n) => n.metadata?.name === nodeName && done(n),
      what,
    );

  beforeAll(async () => {
    admin = kubeConfigFrom(cluster.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const capacity = { cpu: "2", memory: "4Gi", pods: "10" };
    await core.createNode({
      body: {
        metadata: { name: nodeName, labels: { type: "kwok", "kubernetes.io/hostname": nodeName } },
        spec: { taints: [TAINT] },
        status: { capacity, allocatable: capacity, addresses: [{ type: "InternalIP", address: "127.0.0.1" }] },
      },
    });
  });

  afterAll(async () => {
    if (!admin) return;
    // A pod left on the lost node (a failed test) would hold its namespace forever: no kubelet removes it.
    await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    await deleteNamespace(admin, namespace);
    await core.deleteNode({ name: nodeName }).catch(() => undefined);
  }, 90_000);

  it("goes Unknown and unreachable when its kubelet stops; its pods stop being Ready, are evicted (a backend error), and go by force", async () => {
    await watchNode((n) => ready(n) === "True", `node ${nodeName} Ready`);
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "on-lost-node" },
        spec: {
          restartPolicy: "Never",
          nodeSelector: { "kubernetes.io/hostname": nodeName },
          // As troupe's pods will: out a second after their node is lost, not the default 300 s.
          tolerations: [
            { ...TAINT, operator: "Equal" },
            { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 1 },
          ],
          containers: [{ name: "main", image: "troupe.test/none:1" }],
        },
      },
    });
    const podPath = `/api/v1/namespaces/${namespace}/pods`;
    const listPods = () => core.listNamespacedPod({ namespace });
    await until<V1Pod>(podPath, listPods, (p) => p.status?.phase === "Running", "pod Running on the node");

    const since = Date.now();
    await core.patchNode({ name: nodeName, body: [{ op: "replace", path: "/metadata/labels/type", value: "lost" }] });
    // The controller sets the condition, then (a separate update) the taint.
    const lost = await watchNode(
      (n) => ready(n) === "Unknown" && (n.spec?.taints?.some((t) => t.key === "node.kubernetes.io/unreachable") ?? false),
      `node ${nodeName} Unknown and unreachable`,
    );
    const lostAfter = Date.now() - since;
    expect(ready(lost)).toBe("Unknown");
    const notReady = await until<V1Pod>(
      podPath,
      listPods,
      (p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "False") ?? false,
      "pod not Ready",
    );
    // Still Running as far as the API knows: nobody can say how the command ended.
    expect(notReady.status?.phase).toBe("Running");
    console.log(`k8s lost node: Ready=Unknown ${lostAfter} ms after its kubelet stopped`);
    expect(lostAfter).toBeLessThan(45_000);

    // The taint manager evicts it a second later: marked a disruption and deleted, a delete that no kubelet
    // will ever complete; troupe reads it as the backend's failure, and a force delete (grace 0) removes it.
    const evicted = await until<V1Pod>(
      podPath,
      listPods,
      (p) => p.status?.conditions?.some((c) => c.type === "DisruptionTarget" && c.status === "True") ?? false,
      "pod evicted by the taint manager",
    );
    expect(podOutcome(evicted)).toMatchObject({ kind: "backend-error" });
    expect(evicted.status?.conditions?.find((c) => c.type === "DisruptionTarget")?.reason).toBe("DeletionByTaintManager");
    const pending = await core.readNamespacedPod({ name: "on-lost-node", namespace });
    expect(pending.metadata?.deletionTimestamp).toBeDefined();
    await core.deleteNamespacedPod({ name: "on-lost-node", namespace, gracePeriodSeconds: 0 });
    await expect(core.readNamespacedPod({ name: "on-lost-node", namespace })).rejects.toMatchObject({ code: 404 });
  });
});
