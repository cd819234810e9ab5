/**
 * Every image made ready as the run starts (engine/image-check.ts), with a
 * runtime of the test's whose images are answered when the test says: an
 * image that cannot be had fails, at once, what it would fail at its
 * group's turn (OSMO's group semantics), and nothing else; the rest of the
 * run goes on. The real thing (podman, a missing image) is in
 * test/run/first-run.test.ts.
 */
import { describe, expect, it } from "vitest";
import { WorkflowRun, type EngineEvent, type RunRecorder, type RunResult } from "../../src/engine/index.js";
import { LocalPool, TaskStartError, type ExitInfo, type PreparedMember, type Runtime, type TaskLaunch } from "../../src/runtime/index.js";
import { compileYaml } from "./plan-helpers.js";

async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** An image the test answers: ready, or not to be had (with the engine's reason). */
class Answer {
  readonly promise: Promise<void>;
  ready!: () => void;
  fail!: (reason: string) => void;
  constructor(readonly image: string) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.ready = resolve;
      this.fail = (reason) => reject(new TaskStartError(`cannot pull the image ${image}: ${reason}`, "FAILED_IMAGE_PULL"));
    });
    this.promise.catch(() => undefined);
  }
}

/** Members that exit when `finish` says; images as `answers` say, asked once each, as the container runtime does. */
class ImageRuntime implements Runtime {
  readonly answers = new Map<string, Answer>();
  readonly asked: string[] = [];
  readonly started = new Set<string>();
  private readonly exits = new Map<string, (info: ExitInfo) => void>();

  describe(): string {
    return "images of the test's";
  }
  notices(): string[] {
    return [];
  }
  async open(): Promise<void> {}
  async addresses(names: readonly string[]): Promise<Record<string, string>> {
    return Object.fromEntries(names.map((n, i) => [n, `10.0.0.${i + 2}`]));
  }
  releaseAddresses(): void {}
  ensureImage(image: string): Promise<void> {
    this.asked.push(image);
    if (!this.answers.has(image)) this.answers.set(image, new Answer(image));
    return this.answers.get(image)!.promise;
  }
  async prepare(launch: TaskLaunch): Promise<PreparedMember> {
    await this.ensureImage(launch.image);
    const exited = new Promise<ExitInfo>((resolve) => this.exits.set(launch.taskName, resolve));
    return {
      launch,
      release: () => this.started.add(launch.taskName),
      exited,
      stop: async () => this.finish(launch.taskName, 143),
    };
  }
  finish(task: string, code = 0): void {
    this.exits.get(task)?.({ code });
  }
  readonly keepsTasks = false;
  readonly taskView = { mounts: false, dataPaths: "host" } as const;
  async reattach(): Promise<undefined> {
    return undefined;
  }
  async close(): Promise<void> {}
  async sweep(): Promise<string[]> {
    return [];
  }
}

const nullRecorder: RunRecorder = {
  recordTransition: () => undefined,
  updateRun: () => undefined,
  updateGroup: () => undefined,
  updateTask: () => undefined,
  logPath: (_run, group, task, retry) => `/logs/${group}/${task}.${retry}`,
};

async function start(yaml: string) {
  const plan = await compileYaml(yaml);
  const runtime = new ImageRuntime();
  const tasks = new Map<string, { status: string; reason: string }>();
  const groups = new Map<string, string>();
  const onEvent = (e: EngineEvent) => {
    if (e.kind === "task") tasks.set(e.task!, { status: e.to, reason: e.reason });
    if (e.kind === "group") groups.set(e.group!, e.to);
  };
  const run = new WorkflowRun({
    runId: "wf-1",
    plan,
    session: await new LocalPool("fake", () => runtime).openSession({ runId: "wf-1", dataDir: "/data/wf-1" }),
    recorder: nullRecorder,
    dataDir: "/data/wf-1",
    capacity: { cpu: 64, gpu: 0, memoryBytes: 1024 ** 4 },
    maxParallel: 100,
    maxRetries: 0,
    leadHeadStartMs: 0,
    onEvent,
  });
  let result: RunResult | undefined;
  void run.start().then((r) => (result = r));
  await flush();
  return { runtime, tasks, groups, result: () => result };
}

const PIPELINE = `
  workflow:
    name: images
    groups:
    - name: train
      tasks:
      - {name: trainer, image: "train:1", command: ["true"]}
    - name: serve
      ignoreNonleadStatus: IGNORE
      tasks:
      - {name: server, lead: true, image: "LEAD_IMAGE", command: ["true"], inputs: [{task: trainer}]}
      - {name: client, image: "MEMBER_IMAGE", command: ["true"]}
    - name: report
      tasks:
      - {name: reporter, image: "train:1", command: ["true"], inputs: [{task: server}]}
`;

const pipeline = (lead: string, member: string, ignore = true) =>
  PIPELINE.replace("LEAD_IMAGE", lead).replace("MEMBER_IMAGE", member).replace("IGNORE", String(ignore));

describe("images made ready as the run starts", () => {
  it("asks for every image at once, each once, while the first group runs", async () => {
    const { runtime } = await start(pipeline("serve:1", "client:1"));
    expect(new Set(runtime.asked)).toEqual(new Set(["train:1", "serve:1", "client:1"]));
    expect(runtime.asked.filter((i) => i === "serve:1")).toHaveLength(1);
  });

  it("a lead's image that cannot be had fails its group at once, its members and downstream with it, while upstream goes on", async () => {
    const { runtime, tasks, groups, result } = await start(pipeline("serve:missing", "client:1"));
    runtime.answers.get("train:1")!.ready();
    await flush();
    expect(runtime.started).toEqual(new Set(["trainer"]));
    runtime.answers.get("serve:missing")!.fail("manifest unknown");
    await flush();
    expect(tasks.get("server")).toEqual({
      status: "FAILED_IMAGE_PULL",
      reason: "could not start: cannot pull the image serve:missing: manifest unknown",
    });
    expect(tasks.get("client")).toEqual({ status: "FAILED", reason: "lead task finished" });
    expect(groups.get("serve")).toBe("FAILED_IMAGE_PULL");
    expect(groups.get("report")).toBe("FAILED_UPSTREAM");
    // The upstream group is untouched: it runs on, and the run ends when it does.
    expect(tasks.get("trainer")!.status).toBe("RUNNING");
    expect(result()).toBeUndefined();
    runtime.finish("trainer");
    await flush();
    expect(tasks.get("trainer")!.status).toBe("COMPLETED");
    expect(result()).toEqual({ status: "FAILED_IMAGE_PULL" });
    expect(runtime.started).toEqual(new Set(["trainer"]));
  });

  it("a non-lead's image, where non-leads do not decide, fails that task at its group's turn, and the group can still complete", async () => {
    const { runtime, tasks, groups, result } = await start(pipeline("serve:1", "client:missing"));
    for (const image of ["train:1", "serve:1"]) runtime.answers.get(image)!.ready();
    runtime.answers.get("client:missing")!.fail("manifest unknown");
    await flush();
    expect(groups.get("serve")).toBe("WAITING");
    expect(tasks.get("client")!.status).toBe("WAITING");
    runtime.finish("trainer");
    await flush();
    expect(tasks.get("client")!.status).toBe("FAILED_IMAGE_PULL");
    expect(runtime.started.has("server")).toBe(true);
    runtime.finish("server");
    await flush();
    expect(groups.get("serve")).toBe("COMPLETED");
    runtime.finish("reporter");
    await flush();
    expect(result()).toEqual({ status: "COMPLETED" });
  });

  it("with ignoreNonleadStatus: false, a member's image that cannot be had fails its group at once", async () => {
    const { runtime, tasks, groups } = await start(pipeline("serve:1", "client:missing", false));
    runtime.answers.get("client:missing")!.fail("manifest unknown");
    await flush();
    expect(tasks.get("client")!.status).toBe("FAILED_IMAGE_PULL");
    expect(tasks.get("server")!.status).toBe("FAILED");
    expect(groups.get("serve")).toBe("FAILED");
    expect(groups.get("report")).toBe("FAILED_UPSTREAM");
    runtime.finish("trainer");
  });
});
