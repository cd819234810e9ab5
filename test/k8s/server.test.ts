/**
 * A server pool with `runtime: kubernetes` on the test cluster (scripts/k8s/up.sh): `troupe server --config`
 * with two such pools (the pool's `pod_annotations` carry the test cluster's `troupe.test/*` hook, which kwok
 * reads; not a troupe feature), a workflow submitted through the client runs as pods, ends with the exact exit
 * code kwok was told, its log (a kwok `Logs` object per pod, written by this test as a kubelet would have
 * written the container's output) read back through the server; a cancel through the HTTP API deletes the
 * running pods.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, TestHome, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";

const attempt = givenCluster();
const namespace = uniqueNamespace("troupe-server");

describe.skipIf(!attempt.cluster)(`a server pool with runtime: kubernetes ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  let home: TestHome;
  let server: StartedServer | undefined;
  let token: string;
  let config: KubeConfig;
  let core: CoreV1Api;
  let logsWriter: NodeJS.Timeout | undefined;
  const logged = new Set<string>();

  /** What each pod's container "wrote": a kwok Logs object per pod, as soon as the pod is seen. */
  async function giveLogs(logDir: string): Promise<void> {
    const pods = (await core.listNamespacedPod({ namespace })).items;
    for (const pod of pods) {
      const name = pod.metadata!.name!;
      if (logged.has(name)) continue;
      logged.add(name);
      const task = pod.metadata!.labels!["troupe.dev/task"]!;
      const file = path.join(logDir, `${name}.log`);
      fs.writeFileSync(
        file,
        `2026-01-01T00:00:01.000000000Z stdout F hello from ${task}\n2026-01-01T00:00:02.000000000Z stderr F ${task} done\n`,
      );
      await config.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
        group: "kwok.x-k8s.io",
        version: "v1alpha1",
        namespace,
        plural: "logs",
        body: {
          apiVersion: "kwok.x-k8s.io/v1alpha1",
          kind: "Logs",
          metadata: { name, namespace },
          spec: { logs: [{ containers: ["task"], logsFile: file }] },
        },
      });
    }
  }

  beforeAll(async () => {
    await ensureBuilt();
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
    home = new TestHome();
    const serverHome = home.outsideTmp();
    const logDir = home.outsideTmp();
    logsWriter = setInterval(() => void giveLogs(logDir).catch(() => undefined), 100);
    token = (await troupe(["server", "token", "create", "kim", "--home", serverHome], { home: home.home })).stdout.trim();
    const pools = path.join(serverHome, "pools.yaml");
    const pool = (name: string, annotations: string) =>
      `- name: ${name}\n  runtime: kubernetes\n  kubeconfig: ${attempt.cluster!.kubeconfig}\n  namespace: ${namespace}\n  pod_annotations: {${annotations}}\n`;
    // A pool with two platforms, one node each (OSMO's platforms: where a task's resource says it runs).
    const platforms =
      `  platforms:\n` +
      `    one: {node_selector: {kubernetes.io/hostname: kwok-node-1}}\n` +
      `    two: {node_selector: {kubernetes.io/hostname: kwok-node-2}, tolerations: [{key: two, operator: Exists}]}\n` +
      `  default_platform: one\n`;
    fs.writeFileSync(
      pools,
      `pools:\n${pool("k8s", '"troupe.test/run-for": "1500ms", "troupe.test/exit-code": "3"')}${pool("k8s-forever", '"troupe.test/start-after": "0s"')}` +
        `${pool("k8s-platforms", '"troupe.test/run-for": "1500ms"')}${platforms}`,
    );
    server = await startServer(serverHome, ["--config", pools]);
  }, 300_000);

  afterAll(async () => {
    clearInterval(logsWriter);
    await server?.stop();
    if (config) await deleteNamespace(config, namespace);
    home?.remove();
  });

  const client = (args: string[]) =>
    troupe(args, {
      home: home.home,
      env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() },
      timeoutMs: 90_000,
    });

  it("runs a submitted workflow as pods: exact exit codes, and each task's whole log through the server", async () => {
    // Two tasks of a group each (each ends by itself: in one group the first to fail would stop the other).
    const file = home.spec(
      "pair",
      `workflow:\n  name: k8s-pair\n  tasks:\n  - {name: server, image: alpine:3.20, command: ["sh", "-c", "exit 3"]}\n  - {name: client, image: alpine:3.20, command: ["sh", "-c", "exit 3"]}\n`,
    );
    const run = await client(["workflow", "submit", file, "--pool", "k8s", "--wait", "--output", "json"]);
    const record = JSON.parse(run.stdout) as RunRecord;
    expect(record.status, run.stderr).toBe("FAILED");
    const tasks = record.groups.flatMap((g) => g.tasks);
    expect(tasks.map((t) => [t.name, t.status, t.exit_code]).sort()).toEqual([
      ["client", "FAILED", 3],
      ["server", "FAILED", 3],
    ]);
    for (const task of tasks) expect(task.ip).toMatch(/^10\.244\./);
    for (const task of ["server", "client"]) {
      const logs = await client(["workflow", "logs", record.id, "--task", task]);
      expect(logs.stdout).toContain(`hello from ${task}\n`);
      expect(logs.stdout).toContain(`${task} done\n`);
    }
    const left = (await core.listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${record.id}` })).items;
    expect(left.filter((pod) => !pod.metadata!.deletionTimestamp)).toHaveLength(0);
  }, 120_000);

  it("places each task on its resource's platform (the pool's default otherwise), and refuses a platform the pool lacks", async () => {
    const spec = (platform: string) =>
      `workflow:\n  name: k8s-platforms\n  resources:\n    default: {cpu: 1}\n    other: {cpu: 1, platform: ${platform}}\n  tasks:\n` +
      `  - {name: first, image: alpine:3.20, command: ["true"]}\n  - {name: second, image: alpine:3.20, command: ["true"], resource: other}\n`;
    const nodes = new Map<string, string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const pod of (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/task" }).catch(() => undefined))?.items ??
          [])
          if (pod.spec?.nodeName) nodes.set(pod.metadata!.labels!["troupe.dev/task"]!, pod.spec.nodeName);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const run = await client([
      "workflow",
      "submit",
      home.spec("platforms", spec("two")),
      "--pool",
      "k8s-platforms",
      "--wait",
      "--output",
      "json",
    ]);
    watching = false;
    await watcher;
    expect((JSON.parse(run.stdout) as RunRecord).status, run.stderr).toBe("COMPLETED");
    expect(Object.fromEntries(nodes)).toMatchObject({ first: "kwok-node-1", second: "kwok-node-2" });
    const refused = await client(["workflow", "submit", home.spec("no-platform", spec("h100")), "--pool", "k8s-platforms"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("names platform h100, which the pool k8s-platforms does not have (it has: one, two)");
  }, 120_000);
  it("gives a kubernetes pool without max_parallel the runtime's 1000 task slots (its cluster queues), not the machine's 64", async () => {
    const response = await fetch(`${server!.url}/api/pool`, { headers: { authorization: `Bearer ${token}` } });
    const { pools } = (await response.json()) as { pools: Array<{ name: string; capacity: { tasks: number } }> };
    expect(pools.find((p) => p.name === "k8s")?.capacity.tasks).toBe(1000);
  });

  it("a cancel through the HTTP API deletes the workflow's running pods", async () => {
    const api = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(server!.url + route, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const spec = `workflow:\n  name: k8s-forever\n  tasks:\n  - {name: forever, image: alpine:3.20, command: ["sleep", "infinity"]}\n`;
    const id = (await api("POST", "/api/pool/k8s-forever/workflow", { spec })).id as string;
    const podsOf = async () =>
      (await core.listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${id}` })).items.filter(
        (pod) => !pod.metadata!.deletionTimestamp,
      );
    for (
      const deadline = Date.now() + 60_000;
      ((await api("GET", `/api/workflow/${id}`)) as unknown as RunRecord).groups[0]!.tasks[0]!.status !== "RUNNING";
    ) {
      if (Date.now() > deadline) throw new Error("the task did not start");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await podsOf()).toHaveLength(1);
    await api("POST", `/api/workflow/${id}/cancel`, { message: "enough" });
    let record: RunRecord | undefined;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      record = (await api("GET", `/api/workflow/${id}`)) as unknown as RunRecord;
      if (!/RUNNING|PENDING|WAITING/.test(record.status)) break;
    }
    expect(record!.status).toBe("FAILED_CANCELED");
    expect(await podsOf()).toHaveLength(0);
  }, 120_000);
});
