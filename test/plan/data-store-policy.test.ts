/**
 * Where tasks share no disk with troupe (PoolCapabilities.sharedFileSystem
 * false: a Kubernetes pool's pods), outputs pass between them only through a
 * data store: a workflow whose tasks take each other's outputs is refused
 * before it runs on such a pool without one (plan/pool-policy.ts
 * dataStoreRefusal), by `troupe run`'s planning and the server's submission
 * alike. And a server pool's `data_store:` is read from its config, a URL
 * that is not an object store's refused naming the field.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readServerConfig } from "../../src/cli/server-config.js";
import { compileWorkflow, dataStoreRefusal, taskDataRefusal, type CompiledWorkflow } from "../../src/plan/index.js";
import { planSubmission } from "../../src/server/plan-submission.js";
import { loadWorkflowSpec } from "../../src/spec/index.js";

const PASSING = `workflow:
  name: passing
  groups:
  - name: make
    tasks:
    - name: producer
      image: alpine:3.18
      command: [sh, -c, "echo x > {{output}}/x"]
  - name: use
    tasks:
    - name: consumer
      image: alpine:3.18
      command: [cat, "{{input:0}}/x"]
      inputs:
      - task: producer
`;
const ALONE = `workflow:\n  name: alone\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: [sh, -c, "echo x > {{output}}/x"]\n`;

/** A server pool whose tasks share no disk with troupe, as planning a submission sees it. */
const PODS = {
  name: "pods",
  capacity: { cpu: 8, gpu: 0, memoryBytes: 8 * 1024 ** 3 },
  maxRetries: 0,
  privilegedAllowed: false,
  allowedMounts: [],
  sharedFileSystem: false,
};

async function compiled(text: string): Promise<CompiledWorkflow> {
  const loaded = await loadWorkflowSpec(text);
  expect(loaded.spec).toBeDefined();
  return compileWorkflow(loaded.spec!);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-data-store-policy-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("a data store where tasks share no disk", () => {
  it("tasks that pass data on a pool that shares no disk and names no store: refused, naming the task, its input and how to name a store", async () => {
    const plan = await compiled(PASSING);
    const refusal = dataStoreRefusal(plan, { sharedFileSystem: false }, "the kubernetes runtime", "--data-store s3://BUCKET/PREFIX");
    expect(refusal).toBe(
      "task consumer takes the output of producer as an input, and the tasks of the kubernetes runtime share no disk with troupe: " +
        "outputs pass between them only through a data store, which the kubernetes runtime does not name (--data-store s3://BUCKET/PREFIX)",
    );
  });

  it("a store, a shared disk, or tasks that pass nothing: no refusal", async () => {
    const plan = await compiled(PASSING);
    expect(dataStoreRefusal(plan, { sharedFileSystem: false, dataStore: "s3://b/p" }, "k", "")).toBeUndefined();
    expect(dataStoreRefusal(plan, { sharedFileSystem: true }, "k", "")).toBeUndefined();
    expect(dataStoreRefusal(await compiled(ALONE), { sharedFileSystem: false }, "k", "")).toBeUndefined();
  });

  it("the server refuses such a submission before it runs (E_DATA_STORE_REQUIRED), and takes it on a pool with a store", async () => {
    const pool = PODS;
    const request = { user: "u", spec: PASSING, set: {}, setString: {}, maxTasks: 100, wantPlan: false };
    const refused = await planSubmission({ ...request, pool });
    expect(refused).toMatchObject({ kind: "refused", code: "E_DATA_STORE_REQUIRED" });
    expect(JSON.stringify(refused)).toContain("data_store: in the server's config");
    expect(await planSubmission({ ...request, pool: { ...pool, dataStore: "s3://b/p" } })).toMatchObject({ kind: "planned" });
  });
});

describe("a runtime whose tasks get no data (PoolCapabilities.taskData false: Kubernetes pods, for now)", () => {
  const where = "the kubernetes runtime";
  it.each([
    [
      "takes inputs",
      `workflow:\n  name: in\n  tasks:\n  - name: i\n    image: a\n    command: [true]\n    inputs:\n    - url: s3://b/p\n`,
      "i",
    ],
    ["names {{output}} or {{input}}", ALONE, "t"],
    [
      "has url: outputs",
      `workflow:\n  name: up\n  tasks:\n  - name: u\n    image: a\n    command: [true]\n    outputs:\n    - url: s3://b/p\n`,
      "u",
    ],
    [
      "has checkpoints",
      `workflow:\n  name: cp\n  tasks:\n  - name: c\n    image: a\n    command: [true]\n    checkpoint:\n    - {path: /ckpt, url: "s3://b/p", frequency: 60}\n`,
      "c",
    ],
  ])("a task that %s: refused before the run, naming it", async (why, text, task) => {
    const refusal = taskDataRefusal(await compiled(text), false, where);
    expect(refusal).toBe(
      `task ${task} ${why}, and the kubernetes runtime brings no data into its tasks yet (their {{output}} and {{input}} directories do not exist there): run it on the host, container or slurm runtime, or give the Kubernetes pool a data volume (data_volume, --data-volume)`,
    );
    // Where data reaches the tasks: no refusal.
    expect(taskDataRefusal(await compiled(text), true, where)).toBeUndefined();
  });

  it("tasks that neither take nor keep data run there", async () => {
    const plain = `workflow:\n  name: plain\n  tasks:\n  - name: p\n    image: a\n    command: [echo, "{{workflow_id}}"]\n`;
    expect(taskDataRefusal(await compiled(plain), false, where)).toBeUndefined();
  });

  it("the server refuses such a submission before it runs (E_NOT_SUPPORTED), whatever its store", async () => {
    const pool = { ...PODS, taskData: false, dataStore: "s3://b/p" };
    const refused = await planSubmission({ user: "u", spec: PASSING, set: {}, setString: {}, maxTasks: 100, wantPlan: false, pool });
    expect(refused).toMatchObject({ kind: "refused", code: "E_NOT_SUPPORTED" });
    expect(JSON.stringify(refused)).toContain("the pool pods's runtime brings no data into its tasks yet");
  });
});

describe("a server pool's data_store", () => {
  const config = (text: string) => {
    const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };

  it("is read from the config", () => {
    const [pool] = readServerConfig(config("pools:\n- name: p\n  runtime: host\n  data_store: s3://lab-data/troupe\n"));
    expect(pool).toMatchObject({ data_store: "s3://lab-data/troupe" });
  });

  it("a URL that is not an object store's is refused naming the field", () => {
    const file = config("pools:\n- name: p\n  runtime: host\n  data_store: /mnt/shared\n");
    expect(() => readServerConfig(file)).toThrow(`--config ${file}: pools.0.data_store: an object store's URL, s3://BUCKET/PREFIX`);
  });
});
