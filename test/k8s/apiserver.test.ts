/**
 * The real Kubernetes API server of the test cluster (scripts/k8s/up.sh) does what troupe's Kubernetes runtime
 * will lean on, through the official client (@kubernetes/client-node): a labelled pod is validated and stored,
 * the real scheduler binds it to a kwok node, an informer (a list and a watch, not polling) sees it Running and
 * then Failed with the exit code its annotation asked kwok for; OOMKilled, image pull errors, eviction and an
 * unschedulable request look as a kubelet and the scheduler would make them; logs come through the pods/log
 * subresource (the API server proxies to kwok's kubelet server, which reads a file named by a kwok Logs
 * object: no container runs here); RBAC answers 403 for the limited user and the authenticator 401 for a bad
 * token; and the namespace with all it held is deleted. Times measured go to stdout (docs/k8s-notes.md).
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { CoreV1Api, CustomObjectsApi, Log, makeInformer, Watch, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  containerState,
  deleteNamespace,
  givenCluster,
  kubeConfigFrom,
  tokenKubeConfig,
  uniqueNamespace,
  type K8sCluster,
} from "./k8s-cluster.js";

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/apiserver.test.ts skipped: ${attempt.reason}`);
const timings: Record<string, string> = {};
const LABELS = { "troupe.dev/run": "run-1", "troupe.dev/group": "train", "troupe.dev/task": "worker-0", "troupe.dev/retry": "0" };

/** A pod with one container that the kwok stages drive as its annotations say (scripts/k8s/kwok-stages.yaml). */
function pod(name: string, annotations: Record<string, string>, resources?: Record<string, string>): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { ...LABELS, "troupe.test/case": name }, annotations },
    spec: {
      restartPolicy: "Never",
      containers: [
        {
          name: "main",
          image: "troupe.test/none:1",
          command: ["/bin/sh", "-c", "exit 3"],
          resources: { requests: { cpu: "100m", memory: "64Mi", ...resources }, limits: resources },
        },
      ],
    },
  };
}

describe.skipIf(!attempt.cluster)(`a real Kubernetes API server (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 60_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const namespace = uniqueNamespace("troupe-apiserver-test");
  let admin: KubeConfig;
  let core: CoreV1Api;
  // Made in beforeAll: the describe's body runs (to collect its tests) even when it is skipped.
  let logDir = "";

  beforeAll(async () => {
    logDir = mkdtempSync("/var/tmp/troupe-k8s-test-logs-");
    admin = kubeConfigFrom(cluster.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { "troupe.test/suite": "apiserver" } } } });
  });

  afterAll(async () => {
    if (logDir) rmSync(logDir, { recursive: true, force: true });
    if (!admin) return;
    const since = process.hrtime.bigint();
    await deleteNamespace(admin, namespace);
    timings["namespace deleted (pods, Logs objects and all)"] = `${Number((process.hrtime.bigint() - since) / 1_000_000n)} ms`;
    console.log(`k8s api server timings: ${JSON.stringify(timings)}`);
  }, 90_000);

  /**
   * Creates the pod and follows it with an informer (list, then watch from its resource version) until `done`
   * says so; resolves with every distinct state seen on the way ("phase node container-state").
   */
  async function createAndFollow(body: V1Pod, done: (pod: V1Pod) => boolean, withinMs = 30_000) {
    const name = body.metadata!.name!;
    const informer = makeInformer<V1Pod>(
      admin,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector: `troupe.test/case=${name}` }),
      `troupe.test/case=${name}`,
    );
    const seen: string[] = [];
    let last: V1Pod | undefined;
    const finished = new Promise<V1Pod>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pod ${name} after ${withinMs} ms: ${seen.join(" -> ")}`)), withinMs);
      const look = (p: V1Pod) => {
        last = p;
        const state = `${p.status?.phase ?? "?"} ${p.spec?.nodeName ?? "-"} ${containerState(p)}`;
        if (seen.at(-1) !== state) seen.push(state);
        if (done(p)) {
          clearTimeout(timer);
          resolve(p);
        }
      };
      informer.on("add", look);
      informer.on("update", look);
      informer.on("error", (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
    await informer.start();
    const since = process.hrtime.bigint();
    await core.createNamespacedPod({ namespace, body });
    try {
      const final = await finished;
      return { pod: final, seen, ms: Number((process.hrtime.bigint() - since) / 1_000_000n) };
    } finally {
      await informer.stop();
      void last;
    }
  }

  it("schedules a labelled pod onto a kwok node, runs it, and ends it Failed with the exit code its annotation gives", async () => {
    const {
      pod: final,
      seen,
      ms,
    } = await createAndFollow(
      pod("exit-three", { "troupe.test/run-for": "1500ms", "troupe.test/exit-code": "3" }),
      (p) => p.status?.phase === "Failed",
    );
    timings["create -> Failed (run-for 1.5 s)"] = `${ms} ms`;
    expect(final.spec?.nodeName).toMatch(/^kwok-node-[1-9]$/);
    expect(final.metadata?.labels).toMatchObject(LABELS);
    const terminated = final.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated).toMatchObject({ exitCode: 3, reason: "Error" });
    expect(final.status?.podIP).toMatch(/^10\.244\./);
    // The informer saw it placed, then running, then ended: the scheduler's and kwok's writes, in order.
    const running = seen.findIndex((s) => /^Running kwok-node-\d running$/.test(s));
    expect(running, seen.join(" -> ")).toBeGreaterThanOrEqual(0);
    expect(seen.at(-1)).toMatch(/^Failed kwok-node-\d terminated:3$/);
    expect(seen.slice(0, running).every((s) => s.startsWith("Pending"))).toBe(true);
    // The run lasted about run-for (kwok's delay), not more than a few seconds beyond it.
    expect(ms).toBeGreaterThanOrEqual(1500);
    expect(ms).toBeLessThan(10_000);
    // The labels select it, as troupe finds its pods again after a restart.
    const listed = await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-1,troupe.dev/task=worker-0" });
    expect(listed.items.map((p) => p.metadata?.name)).toContain("exit-three");
  });

  it("succeeds with exit code 0 when the annotation says nothing else", async () => {
    const { pod: final } = await createAndFollow(
      pod("exit-zero", { "troupe.test/run-for": "200ms" }),
      (p) => p.status?.phase === "Succeeded",
    );
    expect(final.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
  });

  it("shows an OOM kill as exit code 137 with the reason OOMKilled", async () => {
    const { pod: final } = await createAndFollow(
      pod("oom", { "troupe.test/run-for": "200ms", "troupe.test/exit-code": "137", "troupe.test/reason": "OOMKilled" }),
      (p) => p.status?.phase === "Failed",
    );
    expect(final.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: "OOMKilled" });
  });

  it("keeps a pod whose image cannot be pulled Pending, its container Waiting with the kubelet's reason", async () => {
    const { pod: final } = await createAndFollow(
      pod("image-pull", { "troupe.test/waiting-reason": "ErrImagePull", "troupe.test/waiting-message": "pull access denied" }),
      (p) => containerState(p).startsWith("waiting:Err"),
    );
    expect(final.status?.phase).toBe("Pending");
    expect(final.status?.containerStatuses?.[0]?.state?.waiting).toMatchObject({ reason: "ErrImagePull", message: "pull access denied" });
  });

  it("evicts a running pod when its annotation says so (phase Failed, reason Evicted, a DisruptionTarget condition)", async () => {
    const { pod: final } = await createAndFollow(
      pod("evicted", { "troupe.test/evict-after": "300ms" }),
      (p) => p.status?.phase === "Failed",
    );
    expect(final.status?.reason).toBe("Evicted");
    expect(final.status?.conditions?.find((c) => c.type === "DisruptionTarget")).toMatchObject({ status: "True" });
  });

  it("leaves a pod that asks for more GPUs than any node has unschedulable, with the scheduler's reason", async () => {
    const { pod: final } = await createAndFollow(
      pod("too-many-gpus", {}, { "nvidia.com/gpu": "64" }),
      (p) => p.status?.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable") ?? false,
    );
    expect(final.spec?.nodeName).toBeUndefined();
    const scheduled = final.status?.conditions?.find((c) => c.type === "PodScheduled");
    expect(scheduled?.message).toMatch(/Insufficient nvidia\.com\/gpu/);
  });

  it("serves a pod's log through the API server's log subresource (kwok reads the file a Logs object names)", async () => {
    const { pod: final } = await createAndFollow(pod("logs", {}), (p) => p.status?.phase === "Running");
    expect(final.status?.phase).toBe("Running");
    // The CRI log format, as a kubelet keeps container logs on a node.
    const file = `${logDir}/logs.log`;
    const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString().replace("Z", "000000Z");
    writeFileSync(file, `${at(1)} stdout F first line\n${at(2)} stderr F second line\n`);
    await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: "kwok.x-k8s.io",
      version: "v1alpha1",
      namespace,
      plural: "logs",
      body: {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Logs",
        metadata: { name: "logs" },
        spec: { logs: [{ containers: ["main"], logsFile: file, follow: true }] },
      },
    });
    // kwok learns of the Logs object through its own watch: until then the pod's log is up.sh's empty default
    // (read again, briefly, until it is not).
    const since = process.hrtime.bigint();
    let text = "";
    for (let tries = 0; text === "" && tries < 50; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 100));
      text = await core.readNamespacedPodLog({ name: "logs", namespace, container: "main" });
    }
    timings["Logs object -> first log read"] = `${Number((process.hrtime.bigint() - since) / 1_000_000n)} ms`;
    expect(text).toBe("first line\nsecond line\n");
    const stamped = await core.readNamespacedPodLog({ name: "logs", namespace, container: "main", timestamps: true, tailLines: 1 });
    // The kubelet's timestamps: RFC 3339 with nanoseconds, as the file has them.
    expect(stamped).toBe(`${at(2)} second line\n`);

    // Followed: a line written after the request started arrives on the open stream.
    const stream = new PassThrough();
    let streamed = "";
    stream.on("data", (chunk: Buffer) => (streamed += chunk.toString()));
    const request = await new Log(admin).log(namespace, "logs", "main", stream, { follow: true });
    try {
      await waitUntil(
        () => streamed.includes("second line"),
        10_000,
        () => `streamed so far: ${JSON.stringify(streamed)}`,
      );
      appendFileSync(file, `${at(3)} stdout F third line\n`);
      await waitUntil(
        () => streamed.includes("third line"),
        10_000,
        () => `streamed so far: ${JSON.stringify(streamed)}`,
      );
    } finally {
      request.abort();
    }
  });

  it("gives every pod an empty log where no Logs object names a file (up.sh's ClusterLogs), as a kubelet would", async () => {
    await createAndFollow(pod("no-log-file", {}), (p) => p.status?.phase === "Running");
    expect(await core.readNamespacedPodLog({ name: "no-log-file", namespace, container: "main" })).toBe("");
  });

  // Which resource versions a watch is refused for is the API server's watch cache's call, not etcd's: a watch
  // is served from the cache of its resource, which answers 410 for a version older than the list it was filled
  // from (or than the oldest event it still holds), whatever etcd has compacted. The pods' cache is filled as
  // the API server starts: on a fresh cluster (an empty etcd, as every CI run's up.sh makes) from revision 1,
  // and it drops no event until it is full, so a watch of pods from revision 1 is served, from the start of
  // history, and waits for events: no 410. A custom resource's cache is filled when its CRD is made (up.sh
  // makes kwok's Logs CRD after the API server is up, at a later revision), so a watch of it from revision 1 is
  // older than anything it holds, on a fresh cluster as on an old one.
  it("answers a watch from a resource version it no longer holds with 410 Expired", async () => {
    const status = await new Promise<{ code?: number; reason?: string }>((resolve, reject) => {
      let request: AbortController | undefined;
      const timer = setTimeout(() => reject(new Error("no answer to a watch from resource version 1 within 10 s")), 10_000);
      void new Watch(admin)
        .watch(
          `/apis/kwok.x-k8s.io/v1alpha1/namespaces/${namespace}/logs`,
          { resourceVersion: "1" },
          (phase, object: { code?: number; reason?: string }) => {
            if (phase !== "ERROR") return;
            clearTimeout(timer);
            request?.abort();
            resolve(object);
          },
          () => undefined,
        )
        .then((controller) => (request = controller), reject);
    });
    expect(status).toMatchObject({ code: 410, reason: "Expired" });
  });

  it("answers 403 to the limited user outside what RBAC grants it, and lets it read pods where it may", async () => {
    const limited = kubeConfigFrom(cluster.limitedKubeconfig).makeApiClient(CoreV1Api);
    await expect(limited.listNamespacedPod({ namespace })).rejects.toMatchObject({ code: 403 });
    await expect(limited.createNamespacedPod({ namespace: cluster.limitedNamespace, body: pod("denied", {}) })).rejects.toMatchObject({
      code: 403,
    });
    const own = await limited.listNamespacedPod({ namespace: cluster.limitedNamespace });
    expect(own.items).toEqual([]);
  });

  it("answers 401 to a token it does not know", async () => {
    const stranger = tokenKubeConfig(cluster, "not-a-token-of-this-cluster").makeApiClient(CoreV1Api);
    await expect(stranger.listNamespacedPod({ namespace })).rejects.toMatchObject({ code: 401 });
    // The same request with the limited user's real token gets as far as authorization.
    const known = tokenKubeConfig(cluster, cluster.limitedToken).makeApiClient(CoreV1Api);
    await expect(known.listNamespacedPod({ namespace })).rejects.toMatchObject({ code: 403 });
  });
});

async function waitUntil(condition: () => boolean, withinMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${withinMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
