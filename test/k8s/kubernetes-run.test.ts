/**
 * `troupe run FILE --runtime kubernetes` end to end (the built CLI as a child process) on the test cluster
 * (scripts/k8s/up.sh): the tutorial's three files run, a group's pods and Service made and removed, the
 * exit code kwok was told through the pool's pod annotations (`--pod-annotations troupe.test/exit-code=3`:
 * the test cluster's hook, read by its kwok stages, not a troupe feature) the task's; and a context the
 * kubeconfig lacks refused as a usage error (exit 2) naming it; a group no node can take SCHEDULING with the
 * scheduler's message as its reason, then failed by its queue timeout (the time unschedulable counts); 100
 * tasks' pods made at once, as the runtime's default concurrency lets the cluster queue them.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../run/helpers.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const BIN = join(ROOT, "bin/troupe");
const attempt = givenCluster();
const dir = mkdtempSync(join(tmpdir(), "troupe-k8s-run-"));
const namespace = uniqueNamespace("troupe-run");
let config: KubeConfig;

function troupe(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, TROUPE_HOME: join(dir, "home"), KUBECONFIG: attempt.cluster!.kubeconfig, NO_COLOR: "1" },
    timeout: 90_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe.skipIf(!attempt.cluster)(`troupe run --runtime kubernetes ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  beforeAll(async () => {
    // Built once per vitest run (shared with the other CLI tests).
    await ensureBuilt();
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    await createNamespace(config, namespace);
  }, 300_000);
  afterAll(async () => {
    if (config) await deleteNamespace(config, namespace);
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the tutorial's group file on the cluster and leaves nothing behind", async () => {
    const run = troupe(
      "run",
      join(ROOT, "examples/group_tasks_communication.yaml"),
      "--runtime",
      "kubernetes",
      "--namespace",
      namespace,
      "--pod-annotations",
      "troupe.test/run-for=1s",
    );
    expect(run.out + run.err).toContain(`namespace ${namespace}`);
    expect(run.out + run.err).toContain("held by troupe-init"); // the default holder
    expect(run.out + run.err).toMatch(/COMPLETED/);
    expect(run.code).toBe(0);
    const core = config.makeApiClient(CoreV1Api);
    const pods = (await core.listNamespacedPod({ namespace })).items.filter((pod) => !pod.metadata!.deletionTimestamp);
    expect(pods).toHaveLength(0);
    expect((await core.listNamespacedService({ namespace })).items).toHaveLength(0);
  }, 120_000);

  it("holds the pods with the image's shell when asked (--barrier-holder shell)", async () => {
    const run = troupe(
      "run",
      join(ROOT, "examples/group_tasks_communication.yaml"),
      "--runtime",
      "kubernetes",
      "--namespace",
      namespace,
      "--barrier-holder",
      "shell",
      "--pod-annotations",
      "troupe.test/run-for=1s",
    );
    expect(run.out + run.err).toContain("held by the image's shell");
    expect(run.out + run.err).toMatch(/COMPLETED/);
    expect(run.code).toBe(0);
  }, 120_000);

  it.each(["parallel_tasks.yaml", "group_tasks.yaml"])(
    "runs the tutorial's %s on the cluster: every task COMPLETED, nothing left",
    async (name) => {
      const annotation = ["--pod-annotations", "troupe.test/run-for=1s"];
      const run = troupe(
        "run",
        join(ROOT, "examples", name),
        "--runtime",
        "kubernetes",
        "--namespace",
        namespace,
        ...annotation,
        "--output",
        "json",
      );
      expect(run.code, run.err).toBe(0);
      const record = JSON.parse(run.out) as {
        status: string;
        groups: Array<{ tasks: Array<{ name: string; status: string; exit_code: number }> }>;
      };
      expect(record.status).toBe("COMPLETED");
      const tasks = record.groups.flatMap((g) => g.tasks);
      expect(tasks.length).toBe(3);
      // Every pod "runs" 1 s here (the annotation): group_tasks' lead, the longest as written, may end with its
      // siblings and so stop them; its end is the group's.
      const decisive = name === "group_tasks.yaml" ? tasks.filter((t) => t.name === "processor-1") : tasks;
      for (const task of decisive) expect(task, task.name).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      const core = config.makeApiClient(CoreV1Api);
      const pods = (await core.listNamespacedPod({ namespace })).items.filter((pod) => !pod.metadata!.deletionTimestamp);
      expect(pods).toHaveLength(0);
    },
    120_000,
  );

  it("makes the pods of 100 independent tasks at once by default (the cluster queues), not the machine's 64", async () => {
    const file = join(dir, "fanout.yaml");
    const tasks = Array.from({ length: 100 }, (_, i) => `    - {name: t${i}, image: alpine, command: ["true"]}`);
    writeFileSync(file, `workflow:\n  name: fanout\n  tasks:\n${tasks.join("\n")}\n`);
    const core = config.makeApiClient(CoreV1Api);
    let most = 0;
    let running = true;
    // Each pod runs 10 s (once released): with troupe holding tasks back, no more than its limit would ever exist at once.
    const counting = (async () => {
      while (running) {
        const pods = (await core.listNamespacedPod({ namespace })).items;
        // Live ones only: an ended attempt's pod may linger a moment while troupe deletes it.
        const live = pods.filter((p) => !p.metadata!.deletionTimestamp && !["Succeeded", "Failed"].includes(p.status?.phase ?? ""));
        most = Math.max(most, live.length);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const run = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [BIN, "run", file, "--runtime", "kubernetes", "--namespace", namespace, "--pod-annotations", "troupe.test/run-for=10s"],
        { env: { ...process.env, TROUPE_HOME: join(dir, "home"), KUBECONFIG: attempt.cluster!.kubeconfig, NO_COLOR: "1" } },
      );
      let err = "";
      child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
      child.on("close", (code) => resolve({ code, err }));
    });
    running = false;
    await counting;
    expect(run.code, run.err.slice(-2000)).toBe(0);
    expect(most).toBe(100);
  }, 180_000);

  it("gives a task the exit code of its pod", () => {
    const file = join(dir, "exit.yaml");
    writeFileSync(file, 'workflow:\n  name: exit-three\n  tasks:\n    - name: fails\n      image: alpine\n      command: ["false"]\n');
    const run = troupe(
      "run",
      file,
      "--runtime",
      "kubernetes",
      "--namespace",
      namespace,
      "--pod-annotations",
      "troupe.test/run-for=500ms",
      "--pod-annotations",
      "troupe.test/exit-code=3",
    );
    expect(run.out + run.err).toMatch(/fails\s+\S+\s+FAILED\s+3/);
    expect(run.code).toBe(1);
  }, 120_000);

  it("shows the scheduler's reason while a group waits, and fails it with the queue timeout, deleting its pod", async () => {
    const file = join(dir, "too-big.yaml");
    // 5 GPUs: within the cluster's sum (the plan's check), more than any one node has (the scheduler's).
    writeFileSync(
      file,
      'workflow:\n  name: too-big\n  timeout:\n    queue_timeout: 3s\n  resources:\n    default:\n      gpu: 5\n  tasks:\n    - name: huge\n      image: alpine\n      command: ["true"]\n',
    );
    const run = troupe("run", file, "--runtime", "kubernetes", "--namespace", namespace, "--output", "json");
    expect(run.code).toBe(1);
    const record = JSON.parse(run.out) as {
      id: string;
      groups: Array<{ status: string; tasks: Array<{ status: string; reason: string }> }>;
    };
    const task = record.groups[0]!.tasks[0]!;
    expect(task.status).toBe("FAILED_QUEUE_TIMEOUT");
    const schedulerSays = /0\/\d+ nodes are available: \d+ Insufficient nvidia\.com\/gpu/;
    expect(task.reason).toMatch(/queue timeout \(3s\).*the cluster's last word: 0\/\d+ nodes are available/);
    // While it waited: the task's and the group's SCHEDULING reason were the scheduler's message.
    const events = troupe("events", record.id);
    const lines = events.out.split("\n");
    expect(lines.find((l) => / huge-group\/huge {2}SCHEDULING -> SCHEDULING {2}the cluster has not placed it: /.test(l))).toMatch(
      schedulerSays,
    );
    expect(lines.find((l) => / huge-group {2}SCHEDULING -> SCHEDULING {2}the cluster has not placed huge: /.test(l))).toMatch(
      schedulerSays,
    );
    const pods = (await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items;
    expect(pods.filter((pod) => !pod.metadata!.deletionTimestamp)).toHaveLength(0);
  }, 60_000);

  it("refuses a workflow that passes data before it runs (pods get no data yet), saying which task and why", () => {
    const run = troupe(
      "run",
      join(ROOT, "examples/data_passing.yaml"),
      "--runtime",
      "kubernetes",
      "--namespace",
      namespace,
      "--data-store",
      "s3://b/p",
    );
    expect(run.code).toBe(2);
    expect(run.err).toContain(
      "E_NOT_SUPPORTED: task prepare names {{output}} or {{input}}, and the kubernetes runtime brings no data into its tasks yet",
    );
  }, 60_000);

  it("refuses a context the kubeconfig lacks, saying which it has", () => {
    const run = troupe("run", join(ROOT, "examples/group_tasks.yaml"), "--runtime", "kubernetes", "--context", "nope");
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/no context "nope" in the kubeconfig \(it has: troupe-admin@troupe-test\)/);
  }, 60_000);
});
