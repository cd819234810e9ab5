/**
 * Preemption on the test cluster (scripts/k8s/up.sh): the real scheduler makes room for a pod of a higher
 * PriorityClass by evicting a lower one from a full node, setting the victim's DisruptionTarget condition
 * (reason PreemptionByScheduler) before deleting it, and kwok removes the victim. All on a node of the test's
 * own (tainted, so that no other test's pod lands on it or is preempted), removed at the end.
 */
import { CoreV1Api, makeInformer, SchedulingV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podOutcome } from "../../src/runtime/kubernetes/index.js";
import { deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace, type K8sCluster } from "./k8s-cluster.js";

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/preemption.test.ts skipped: ${attempt.reason}`);
const TAINT = { key: "troupe.test/dedicated", value: "preemption", effect: "NoSchedule" };

describe.skipIf(!attempt.cluster)(`preemption (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 90_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const namespace = uniqueNamespace("troupe-preemption-test");
  const nodeName = `kwok-preempt-${process.pid}`;
  const low = `troupe-test-low-${process.pid}`;
  const high = `troupe-test-high-${process.pid}`;
  let admin: KubeConfig;
  let core: CoreV1Api;

  const pod = (name: string, priorityClassName: string): V1Pod => ({
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      priorityClassName,
      nodeSelector: { "kubernetes.io/hostname": nodeName },
      tolerations: [{ ...TAINT, operator: "Equal" }],
      containers: [{ name: "main", image: "troupe.test/none:1", resources: { requests: { cpu: "2" }, limits: { cpu: "2" } } }],
    },
  });

  beforeAll(async () => {
    admin = kubeConfigFrom(cluster.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    const scheduling = admin.makeApiClient(SchedulingV1Api);
    await scheduling.createPriorityClass({ body: { metadata: { name: low }, value: 10 } });
    await scheduling.createPriorityClass({ body: { metadata: { name: high }, value: 1000 } });
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
    await deleteNamespace(admin, namespace);
    await core.deleteNode({ name: nodeName }).catch(() => undefined);
    const scheduling = admin.makeApiClient(SchedulingV1Api);
    for (const name of [low, high]) await scheduling.deletePriorityClass({ name }).catch(() => undefined);
  }, 90_000);

  it("evicts the lower priority pod from the full node for the higher one, saying so in its condition", async () => {
    const informer = makeInformer<V1Pod>(admin, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace }));
    const seen = new Map<string, V1Pod>();
    const waiters: Array<() => void> = [];
    const remember = (p: V1Pod) => {
      seen.set(p.metadata!.name!, p);
      waiters.forEach((w) => w());
    };
    let victimDeleted = false;
    informer.on("add", remember);
    informer.on("update", remember);
    informer.on("delete", (p) => {
      if (p.metadata?.name === "victim") victimDeleted = true;
      remember(p);
    });
    const until = (what: string, check: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: not within 60 s`)), 60_000);
        const look = () => {
          if (!check()) return;
          clearTimeout(timer);
          resolve();
        };
        waiters.push(look);
        look();
      });
    await informer.start();
    try {
      await core.createNamespacedPod({ namespace, body: pod("victim", low) });
      await until("victim Running", () => seen.get("victim")?.status?.phase === "Running");
      await core.createNamespacedPod({ namespace, body: pod("important", high) });
      await until("important Running on the node", () => seen.get("important")?.status?.phase === "Running");
      expect(seen.get("important")?.spec?.nodeName).toBe(nodeName);
      expect(victimDeleted).toBe(true);
      const disruption = seen.get("victim")?.status?.conditions?.find((c) => c.type === "DisruptionTarget");
      expect(disruption).toMatchObject({ status: "True", reason: "PreemptionByScheduler" });
      expect(podOutcome(seen.get("victim")!, true)).toMatchObject({ kind: "preempted" });
    } finally {
      await informer.stop();
    }
  });
});
