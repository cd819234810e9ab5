/**
 * OSMO's run semantics with the real CLI on the test cluster (scripts/k8s/up.sh): test/run/semantics.test.ts's
 * cases with `troupe run --runtime kubernetes`, lead rules, ignoreNonleadStatus, exit actions, RESCHEDULE by
 * code, retries, exec_timeout (with FAILED_UPSTREAM downstream: its input passes through a data volume, without
 * which the runtime refuses a task with inputs), a group's members stopped when its lead ends (their pods deleted, gone),
 * a pod that never starts ended by the start timeout.
 * kwok runs no command: what each task's command would do is told to kwok's stages by per-task (and
 * per-attempt) annotations (`troupe.test/exit-code.TASK[.RETRY]`, `troupe.test/run-for.TASK[.RETRY]`,
 * scripts/k8s/kwok-stages.yaml), given as pool-wide `--pod-annotations`, and what it "prints" by a kwok Logs
 * object per pod (pod-recorder.ts). A stopped pod's command ends as one that honours SIGTERM does (143). The
 * data chain of the local suite has no case here: pods get no data yet, and such a workflow is refused before
 * it runs (kubernetes-run.test.ts).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  describeRun,
  ensureBuilt,
  groupOf,
  killStartedRuns,
  ms,
  random,
  runJson,
  STOP_GRACE_MS,
  taskOf,
  TestHome,
  type RunRecord,
} from "../run/helpers.js";
import { createDataVolume, createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { PodRecorder, type PodLogs } from "./pod-recorder.js";

const attempt = givenCluster();
const namespace = uniqueNamespace("troupe-sem");
let config: KubeConfig;
let home: TestHome;
let recorder: PodRecorder;
let logDir: string;
let removeVolume: (() => Promise<void>) | undefined;
const DATA_CLAIM = "shared-data";
/** Why the running kwok cannot play these cases (its stages predate per-task annotations or the stop), if so. */
let staleStages: string | undefined;

/** `troupe run FILE --runtime kubernetes` in the test namespace, its pods doing what `does` says (annotations). */
async function runOnCluster(
  file: string,
  does: Record<string, string>,
  options: { logs?: PodLogs; extra?: string[]; timeoutMs?: number } = {},
) {
  recorder.logs = options.logs ?? {};
  const annotations = Object.entries(does).flatMap(([key, value]) => ["--pod-annotations", `troupe.test/${key}=${value}`]);
  const run = await runJson(file, {
    home: home.home,
    env: { KUBECONFIG: attempt.cluster!.kubeconfig },
    extra: ["--runtime", "kubernetes", "--namespace", namespace, ...annotations, ...(options.extra ?? [])],
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { ...run, pods: await recorder.ofRunSettled(run.record.id) };
}

/** A task that runs on past exec_timeout (no run-for: until its pod is deleted), one that ends in time, and maybe one downstream of the first. */
const timeoutWorkflow = (downstream: boolean) => `workflow:
  name: timeout-${random()}
  timeout:
    exec_timeout: 2s
  tasks:
  - name: slow
    image: alpine:3.18
    command: ["sleep", "60"]
${downstream ? '  - name: after-slow\n    image: alpine:3.18\n    command: ["echo", "never runs"]\n    inputs:\n    - task: slow\n' : ""}  - name: quick
    image: alpine:3.18
    command: ["echo", "done in time"]
`;

/** From the end of task `name` to the end of the run (every member's pod gone). */
const stoppedAfter = (record: RunRecord, name: string): number => ms(record.end_time) - ms(taskOf(record, name).end_time);
const ranFor = (record: RunRecord, name: string): number => ms(taskOf(record, name).end_time) - ms(taskOf(record, name).start_time);

/** Whether the running kwok has this checkout's stages: a per-task exit code, and a stopped pod ending with 143. */
async function checkStages(): Promise<string | undefined> {
  const core = config.makeApiClient(CoreV1Api);
  const probe = (name: string, annotations: Record<string, string>): V1Pod => ({
    metadata: { name, labels: { "troupe.dev/task": "probe", "troupe.dev/retry": "0" }, annotations },
    spec: { restartPolicy: "Never", containers: [{ name: "task", image: "troupe.test/none:1" }] },
  });
  // Through the test's own watch: a stopped pod's last state lasts a moment before the pod is gone.
  const until = async (name: string, done: (state: string) => boolean) => {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const state = recorder.pods.get(name)?.lastState;
      if (state && done(state)) return state;
    }
    return `${recorder.pods.get(name)?.lastState ?? "never seen"} after 10 s`;
  };
  await core.createNamespacedPod({
    namespace,
    body: probe("probe-code", { "troupe.test/run-for.probe.0": "0s", "troupe.test/exit-code.probe": "7" }),
  });
  await core.createNamespacedPod({ namespace, body: probe("probe-stop", {}) });
  const code = await until("probe-code", (state) => state.startsWith("terminated"));
  const running = await until("probe-stop", (state) => state === "running");
  await core.deleteNamespacedPod({ name: "probe-stop", namespace });
  const stopped = running === "running" ? await until("probe-stop", (state) => state.startsWith("terminated")) : running;
  await core.deleteNamespacedPod({ name: "probe-code", namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  const restart = "restart the test cluster's kwok (bash scripts/k8s/down.sh; bash scripts/k8s/up.sh) from this checkout";
  if (code !== "terminated:7") return `the running kwok's stages predate per-task annotations (a probe ended ${code}): ${restart}`;
  if (stopped !== "terminated:143") return `the running kwok's stages predate stopping with 143 (a deleted probe: ${stopped}): ${restart}`;
  return undefined;
}

describe.skipIf(!attempt.cluster)(`troupe run semantics on Kubernetes ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  beforeAll(async () => {
    await ensureBuilt();
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    await createNamespace(config, namespace);
    home = new TestHome();
    logDir = mkdtempSync(join("/var/tmp", "troupe-sem-logs-"));
    recorder = new PodRecorder(config, namespace, logDir);
    await recorder.start();
    staleStages = await checkStages();
    removeVolume = await createDataVolume(config, namespace, DATA_CLAIM);
  }, 300_000);
  afterEach(() => killStartedRuns());
  afterAll(async () => {
    recorder?.stop();
    if (config) await deleteNamespace(config, namespace);
    await removeVolume?.();
    home?.remove();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  }, 90_000);

  it("a lead that exits 1 fails its group; the running non-lead's pod is deleted at once and ends with 143", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "lead-fails",
      `workflow:
  name: lead-fails-${random()}
  groups:
  - name: pair
    tasks:
    - name: boss
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.2; echo giving up; exit 1"]
    - name: worker
      image: alpine:3.18
      command: ["sleep", "1000"]
`,
    );
    const run = await runOnCluster(file, { "run-for.boss": "200ms", "exit-code.boss": "1" }, { logs: { boss: "giving up\n" } });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.record.status).toBe("FAILED");
    expect(groupOf(run.record, "pair").status).toBe("FAILED");
    expect(taskOf(run.record, "boss")).toMatchObject({ status: "FAILED", exit_code: 1 });
    // The kubelet's SIGTERM (128 + 15) at troupe's delete request; a kill after the grace would say 137.
    expect(taskOf(run.record, "worker")).toMatchObject({ status: "FAILED", exit_code: 143 });
    expect(ranFor(run.record, "boss")).toBeGreaterThanOrEqual(190);
    expect(stoppedAfter(run.record, "boss"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
    // The worker's pod was deleted when the lead ended (not by the run's last clean-up), and is gone.
    const worker = run.pods.get("worker.0")!;
    expect(worker.lastState).toBe("terminated:143");
    expect(worker.deleting! - ms(taskOf(run.record, "boss").end_time)).toBeLessThan(STOP_GRACE_MS);
    expect(worker.gone).toBeDefined();
    expect(home.log(run.record.id, "boss")).toBe("giving up\n");
  }, 60_000);

  it("ignoreNonleadStatus: false with a non-lead exiting 3 fails the group (and stops the lead)", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "strict-group",
      `workflow:
  name: strict-${random()}
  groups:
  - name: strict
    ignoreNonleadStatus: false
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sleep", "1000"]
    - name: helper
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.1; exit 3"]
`,
    );
    const run = await runOnCluster(file, { "run-for.helper": "100ms", "exit-code.helper": "3" });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.record.status).toBe("FAILED");
    expect(groupOf(run.record, "strict").status).toBe("FAILED");
    expect(taskOf(run.record, "helper")).toMatchObject({ status: "FAILED", exit_code: 3 });
    expect(taskOf(run.record, "lead")).toMatchObject({ status: "FAILED", exit_code: 143 });
    expect(stoppedAfter(run.record, "helper"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
    expect(run.pods.get("lead.0")).toMatchObject({ lastState: "terminated:143", gone: expect.any(Number) });
  }, 60_000);

  it("with the default ignoreNonleadStatus, a non-lead exiting 3 does not fail the group", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "lenient-group",
      `workflow:
  name: lenient-${random()}
  groups:
  - name: lenient
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "sleep 1"]
    - name: helper
      image: alpine:3.18
      command: ["sh", "-c", "exit 3"]
`,
    );
    const run = await runOnCluster(file, { "run-for.lead": "1s", "run-for.helper": "0s", "exit-code.helper": "3" });
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
    expect(groupOf(run.record, "lenient").status).toBe("COMPLETED");
    expect(taskOf(run.record, "lead")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(taskOf(run.record, "helper")).toMatchObject({ status: "FAILED", exit_code: 3 });
    // The lead ran its second to the end: the helper's failure stopped nothing.
    expect(ranFor(run.record, "lead")).toBeGreaterThanOrEqual(990);
    expect(run.pods.get("lead.0")!.lastState).toBe("terminated:0");
  }, 60_000);

  it("exitActions {COMPLETE: 15} with exit 15 completes", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "exit-15",
      `workflow:
  name: exit15-${random()}
  tasks:
  - name: warns
    image: alpine:3.18
    command: ["sh", "-c", "echo finished with warnings; exit 15"]
    exitActions:
      COMPLETE: 15
`,
    );
    const run = await runOnCluster(
      file,
      { "run-for.warns": "100ms", "exit-code.warns": "15" },
      { logs: { warns: "finished with warnings\n" } },
    );
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
    expect(taskOf(run.record, "warns")).toMatchObject({ status: "COMPLETED", exit_code: 15, retry_id: 0 });
    expect(home.log(run.record.id, "warns")).toBe("finished with warnings\n");
  }, 60_000);

  it("RESCHEDULE on exit 1 reruns the task in a new pod, which completes on its second attempt (--max-retries 1)", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "reschedule",
      `workflow:
  name: resched-${random()}
  tasks:
  - name: flaky
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      if [ "$TROUPE_RETRY_ID" != 0 ]; then echo "second attempt: ok"; exit 0; fi
      echo "first attempt: failing"
      exit 1
    exitActions:
      RESCHEDULE: "1"
`,
    );
    const run = await runOnCluster(
      file,
      { "run-for.flaky": "100ms", "exit-code.flaky.0": "1", "exit-code.flaky": "0" },
      { logs: { "flaky.0": "first attempt: failing\n", "flaky.1": "second attempt: ok\n" }, extra: ["--max-retries", "1"] },
    );
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
    expect(taskOf(run.record, "flaky")).toMatchObject({ status: "COMPLETED", exit_code: 0, retry_id: 1 });
    expect(home.log(run.record.id, "flaky", 0)).toBe("first attempt: failing\n");
    expect(home.log(run.record.id, "flaky", 1)).toBe("second attempt: ok\n");
    // One pod per attempt, each ended with its own code; no third.
    expect([...run.pods.keys()].sort()).toEqual(["flaky.0", "flaky.1"]);
    expect(run.pods.get("flaky.0")!.lastState).toBe("terminated:1");
    expect(run.pods.get("flaky.1")!.lastState).toBe("terminated:0");
  }, 60_000);

  it("RESCHEDULE with no retries left (--max-retries 0) fails the task", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "reschedule-none",
      `workflow:
  name: resched0-${random()}
  tasks:
  - name: flaky
    image: alpine:3.18
    command: ["sh", "-c", "exit 1"]
    exitActions:
      RESCHEDULE: "1"
`,
    );
    const run = await runOnCluster(file, { "run-for.flaky": "0s", "exit-code.flaky": "1" }, { extra: ["--max-retries", "0"] });
    expect(run.code, describeRun(run)).toBe(1);
    expect(taskOf(run.record, "flaky")).toMatchObject({ status: "FAILED", exit_code: 1, retry_id: 0 });
    expect([...run.pods.keys()]).toEqual(["flaky.0"]);
  }, 60_000);

  it("exec_timeout 2s stops a pod running on as FAILED_EXEC_TIMEOUT (its pod deleted, ending 143); an independent task completes", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec("timeout", timeoutWorkflow(false));
    const run = await runOnCluster(file, { "run-for.quick": "100ms" }, { logs: { quick: "done in time\n" } });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.record.status).toBe("FAILED_EXEC_TIMEOUT");
    expect(groupOf(run.record, "slow-group").status).toBe("FAILED_EXEC_TIMEOUT");
    expect(taskOf(run.record, "slow")).toMatchObject({ status: "FAILED_EXEC_TIMEOUT", exit_code: 143 });
    expect(taskOf(run.record, "quick")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(home.log(run.record.id, "quick")).toBe("done in time\n");
    // The timeout fired on its own time, after at least exec_timeout; the pod went at the polite signal.
    expect(ranFor(run.record, "slow")).toBeGreaterThanOrEqual(1_950);
    expect(ranFor(run.record, "slow")).toBeLessThan(2 * 2_000);
    expect(stoppedAfter(run.record, "slow"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
    expect(run.pods.get("slow.0")).toMatchObject({ lastState: "terminated:143", gone: expect.any(Number) });
  }, 60_000);

  it("exec_timeout fails the timed-out task's downstream as FAILED_UPSTREAM, which gets no pod", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec("timeout-downstream", timeoutWorkflow(true));
    // A dependency is an input: pods get data through a data volume (troupe's home on it), which the pool names.
    const volume = ["--data-volume", DATA_CLAIM, "--data-volume-path", home.home];
    const run = await runOnCluster(file, { "run-for.quick": "100ms" }, { extra: volume });
    expect(run.code, describeRun(run)).toBe(1);
    expect(taskOf(run.record, "slow")).toMatchObject({ status: "FAILED_EXEC_TIMEOUT", exit_code: 143 });
    expect(groupOf(run.record, "after-slow-group").status).toBe("FAILED_UPSTREAM");
    expect(taskOf(run.record, "after-slow")).toMatchObject({ status: "FAILED_UPSTREAM", exit_code: 3000 });
    expect(existsSync(home.logPath(run.record.id, "after-slow"))).toBe(false);
    expect([...run.pods.keys()].sort()).toEqual(["quick.0", "slow.0"]);
  }, 60_000);

  it("a pod that stays ContainerCreating past --start-timeout ends FAILED_START_TIMEOUT (3005) and is deleted", async (context) => {
    if (staleStages) context.skip(staleStages);
    const file = home.spec(
      "start-timeout",
      `workflow:\n  name: start-timeout-${random()}\n  tasks:\n  - {name: stuck, image: alpine:3.18, command: ["true"]}\n`,
    );
    // Scheduled (placed on a node) and never Running: a kubelet still making its container (a volume, a slow pull).
    const run = await runOnCluster(file, { "start-after": "1h" }, { extra: ["--start-timeout", "3s"] });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.record.status).toBe("FAILED_START_TIMEOUT");
    expect(taskOf(run.record, "stuck")).toMatchObject({ status: "FAILED_START_TIMEOUT", exit_code: 3005 });
    expect(taskOf(run.record, "stuck").reason).toMatch(/did not start in time: its sandbox was not up 3s after/);
    expect(run.pods.get("stuck.0")).toMatchObject({ gone: expect.any(Number) });
  }, 60_000);
});
