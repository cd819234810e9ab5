/**
 * What troupe reads from a pod's state (src/runtime/kubernetes/pod-state.ts), from pods the real API server,
 * scheduler and kwok (scripts/k8s/up.sh) brought to each state: placement, exact exit codes, OOMKilled, image
 * pull and container config errors, eviction, an unschedulable request. Preemption and a lost node are read in
 * preemption.test.ts and node-lost.test.ts, where those states are made. Pods are made by the runtime's own
 * attemptPod, with the annotations kwok's stages read added.
 */
import { CoreV1Api, makeInformer, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskLaunch } from "../../src/port/index.js";
import {
  attemptPod,
  podOutcome,
  podPlacement,
  unschedulableReason,
  waitingProblem,
  type Owner,
} from "../../src/runtime/kubernetes/index.js";
import { deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace, type K8sCluster } from "./k8s-cluster.js";

describe("pod states without a cluster", () => {
  it("has no outcome while the pod runs, and tells a pod deleted before it was placed or started", () => {
    const running: V1Pod = { spec: { nodeName: "n1", containers: [] }, status: { phase: "Running", podIP: "10.0.0.1" } };
    expect(podOutcome(running)).toBeUndefined();
    expect(podPlacement(running)).toEqual({ node: "n1", address: "10.0.0.1" });
    expect(podOutcome({ spec: { containers: [] }, status: { phase: "Pending" } }, true)).toEqual({
      kind: "start-failed",
      message: "the pod was deleted before it was placed",
    });
    const creating: V1Pod = {
      spec: { nodeName: "n1", containers: [] },
      status: {
        phase: "Pending",
        containerStatuses: [
          { name: "task", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ContainerCreating" } } },
        ],
      },
    };
    expect(podOutcome(creating, true)).toMatchObject({ kind: "start-failed", message: "the pod was deleted before its command started" });
    expect(waitingProblem(creating)).toBeUndefined();
  });
});

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/pod-state.test.ts (cluster part) skipped: ${attempt.reason}`);
const OWNER: Owner = { home: "pod-state-test", runId: "pod-state-1" };

describe.skipIf(!attempt.cluster)(`pod states from a real cluster (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 60_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const namespace = uniqueNamespace("troupe-pod-state-test");
  let admin: KubeConfig;
  let core: CoreV1Api;

  beforeAll(async () => {
    admin = kubeConfigFrom(cluster.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    if (admin) await deleteNamespace(admin, namespace);
  }, 90_000);

  /** The runtime's pod for task `name` with kwok's annotations, followed by an informer until `done`. */
  async function podUntil(name: string, annotations: Record<string, string>, done: (p: V1Pod) => boolean, gpus = 0) {
    const launch: TaskLaunch = {
      key: `g/${name}/0`,
      taskName: name,
      groupName: "g",
      retryId: 0,
      image: "ubuntu:24.04",
      argv: ["true"],
      env: {},
      files: [],
      outputDir: "",
      inputDirs: [],
      address: "",
      hosts: {},
      logPath: "",
      resources: { cpu: 0.1, gpu: gpus, memoryBytes: 64 * 1024 ** 2 },
    };
    const body = attemptPod(launch, OWNER, { namespace });
    body.metadata!.annotations = { ...body.metadata!.annotations, ...annotations };
    const podName = body.metadata!.name!;
    const informer = makeInformer<V1Pod>(admin, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace }));
    const found = new Promise<V1Pod>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pod ${name}: not as wanted within 30 s`)), 30_000);
      const look = (p: V1Pod) => {
        if (p.metadata?.name !== podName || !done(p)) return;
        clearTimeout(timer);
        resolve(p);
      };
      informer.on("add", look);
      informer.on("update", look);
    });
    await informer.start();
    try {
      await core.createNamespacedPod({ namespace, body });
      return await found;
    } finally {
      await informer.stop();
    }
  }
  const ended = (p: V1Pod) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed";

  it("reads the placement of a running pod: its node and address", async () => {
    const pod = await podUntil("placed", {}, (p) => p.status?.phase === "Running");
    expect(podPlacement(pod)).toEqual({ node: expect.stringMatching(/^kwok-node-\d$/), address: expect.stringMatching(/^10\.244\./) });
    expect(podOutcome(pod)).toBeUndefined();
  });

  it("reads exact exit codes, and OOMKilled as 137 with its reason", async () => {
    const three = await podUntil("three", { "troupe.test/run-for": "100ms", "troupe.test/exit-code": "3" }, ended);
    expect(podOutcome(three)).toEqual({ kind: "exited", code: 3 });
    const zero = await podUntil("zero", { "troupe.test/run-for": "100ms" }, ended);
    expect(podOutcome(zero)).toEqual({ kind: "exited", code: 0 });
    const oom = await podUntil(
      "oom",
      { "troupe.test/run-for": "100ms", "troupe.test/exit-code": "137", "troupe.test/reason": "OOMKilled" },
      ended,
    );
    expect(podOutcome(oom)).toEqual({ kind: "exited", code: 137, reason: "OOMKilled" });
  });

  it("reads an image that cannot be pulled, and a container that cannot be made, with the kubelet's words", async () => {
    const pull = await podUntil(
      "pull",
      { "troupe.test/waiting-reason": "ImagePullBackOff", "troupe.test/waiting-message": 'Back-off pulling image "ubuntu:24.04"' },
      (p) => waitingProblem(p) !== undefined,
    );
    expect(waitingProblem(pull)).toEqual({ kind: "image-pull", message: 'ImagePullBackOff: Back-off pulling image "ubuntu:24.04"' });
    expect(podOutcome(pull)).toBeUndefined();
    expect(podOutcome(pull, true)).toEqual(waitingProblem(pull));
    const config = await podUntil(
      "config",
      { "troupe.test/waiting-reason": "CreateContainerConfigError", "troupe.test/waiting-message": 'secret "creds" not found' },
      (p) => waitingProblem(p) !== undefined,
    );
    expect(waitingProblem(config)).toEqual({ kind: "start-failed", message: 'CreateContainerConfigError: secret "creds" not found' });
  });

  it("reads an eviction as evicted, with the kubelet's message", async () => {
    const evicted = await podUntil("evicted", { "troupe.test/evict-after": "100ms" }, ended);
    expect(podOutcome(evicted)).toEqual({ kind: "evicted", message: "The node was low on resource: memory." });
  });

  it("reads why the scheduler cannot place a pod", async () => {
    const stuck = await podUntil("stuck", {}, (p) => unschedulableReason(p) !== undefined, 64);
    expect(unschedulableReason(stuck)).toMatch(/^0\/\d+ nodes are available: .*Insufficient nvidia\.com\/gpu/);
    expect(podOutcome(stuck, true)).toEqual({ kind: "start-failed", message: "the pod was deleted before it was placed" });
  });
});
