/**
 * A run the server resumes after a restart but whose runtime cannot open
 * (no free /24 for its network, say) ends with the reason, all of it: its
 * groups and tasks too, not the run alone with its groups left RUNNING in
 * the record (and its kept tasks running unwatched). In process, with a real
 * store and a runtime that fails to open.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LocalPool } from "../../src/runtime/index.js";
import type { Runtime } from "../../src/runtime/index.js";
import { RunManager, type Pool } from "../../src/server/index.js";
import type { RunObserver } from "../../src/server/run-manager.js";
import { planSubmission } from "../../src/server/plan-submission.js";
import { RunStore } from "../../src/store/index.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

const SPEC = `workflow:
  name: wf
  tasks:
  - name: a
    image: alpine
    command: ["sleep", "60"]
`;

const NO_NETWORK = new Error("no free /24 left in 10.213.0.0/16 for a run network");
let failOpen!: () => void;

/** A runtime that keeps tasks but cannot open a run (it says so when the test calls failOpen). */
function failingRuntime(): Runtime {
  const refuse = () => Promise.reject(NO_NETWORK);
  return {
    describe: () => "runtime: test",
    notices: () => [],
    open: () => new Promise((_, reject) => (failOpen = () => reject(NO_NETWORK))),
    addresses: refuse,
    releaseAddresses: () => undefined,
    prepare: refuse,
    keepsTasks: true,
    taskView: { mounts: false, dataPaths: "host" },
    reattach: refuse,
    close: () => Promise.resolve(),
    sweep: () => Promise.resolve([]),
  };
}

describe("a resumed run whose runtime cannot open", () => {
  it("is settled FAILED_SERVER_ERROR with its groups and tasks, with the reason, and counts as running no more", async () => {
    const home = mkdtempSync(join(tmpdir(), "troupe-recover-"));
    homes.push(home);
    const store = RunStore.open(home);
    // Left RUNNING by a server that is gone (a pid that never had this start time).
    const id = store.createRun({
      name: "wf",
      specText: SPEC,
      variables: { set: {}, setString: {} },
      runtime: "test",
      submitTime: 1_000,
      owner: "kept:1:0:gone",
      user: "ann",
      pool: "default",
      groups: [{ name: "a-group", tasks: [{ name: "a", lead: false }] }],
    });
    store.updateRun(id, { status: "RUNNING", startTime: 1_100 });
    store.updateGroup(id, 0, { status: "RUNNING", startTime: 1_100 });
    store.updateTask(id, 0, 0, { status: "RUNNING", startTime: 1_100 });
    store.flush();
    const pool: Pool = {
      name: "default",
      capacity: { cpu: 4, gpu: 0, memoryBytes: 1 << 30 },
      maxRetries: 0,
      maxParallel: 8,
      exitActions: [],
      privilegedAllowed: false,
      allowedMounts: [],
      defaultMounts: [],
      backend: new LocalPool("test", failingRuntime),
    };
    // Planned in this thread: the worker threads' module exists only in the build (dist/), and this test runs the sources.
    const observer: RunObserver = { started: (run, created) => store.keepLive(run, created), ended: (run) => store.forget(run) };
    const manager = new RunManager(store, new Map([["default", pool]]), { maxTasks: 100, maxRunsPerUser: 1 }, observer, planSubmission);
    const recovered = await manager.recover();
    expect(recovered).toMatchObject({ resumed: [id], settled: [] });
    // Someone looks at the run meanwhile: its record is kept live from then on (store/live-record.ts).
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(JSON.parse(store.runJson(id)!.json)).toMatchObject({ status: "RUNNING" });
    failOpen();
    await manager.drain();
    // What the API answers (the live record, kept a while after the end) says the same as the database.
    expect(JSON.parse(store.runJson(id)!.json)).toMatchObject({
      status: "FAILED_SERVER_ERROR",
      groups: [{ status: "FAILED_SERVER_ERROR", tasks: [{ status: "FAILED_SERVER_ERROR" }] }],
    });
    const record = store.getRun(id)!;
    expect([record.status, record.groups[0]!.status, record.groups[0]!.tasks[0]!.status]).toEqual([
      "FAILED_SERVER_ERROR",
      "FAILED_SERVER_ERROR",
      "FAILED_SERVER_ERROR",
    ]);
    const last = store.transitions(id).at(-1)!;
    expect(last).toMatchObject({ from: "RUNNING", to: "FAILED_SERVER_ERROR" });
    expect(last.reason).toMatch(/could not resume the run: no free \/24 left/);
    expect(manager.running).toBe(0);
    store.close();
  });
});
