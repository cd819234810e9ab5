/**
 * The store's listing filters (FAILED is every way of failing, names match in
 * part, an unknown status is refused with the valid ones), the reasons kept
 * per attempt (and filled in for databases made before), cancel requests, and
 * a restarted run's taken-over tasks pointing at their logs where they ran.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { WorkflowStatus } from "../../src/engine/index.js";
import { TroupeError } from "../../src/errors/index.js";
import { migrate, MIGRATIONS } from "../../src/store/migrations.js";
import { describeFilters, RUN_STATUSES, RunStore, type NewRun } from "../../src/store/index.js";
import { reusedReason } from "../../src/util/reused-reason.js";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const homes: string[] = [];
const stores: RunStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function openStore(): RunStore {
  const home = mkdtempSync(join(tmpdir(), "troupe-filter-"));
  homes.push(home);
  const store = RunStore.open(home);
  stores.push(store);
  return store;
}

function newRun(name: string, submitTime = T0): NewRun {
  return { name, specText: "", runtime: "host/none", submitTime, groups: [{ name: "g", tasks: [{ name: "t", lead: true }] }] };
}

describe("listing runs by status and name", () => {
  it("FAILED matches every FAILED_* status; other statuses match exactly, in any case", () => {
    const store = openStore();
    const ended = ["FAILED", "FAILED_CANCELED", "FAILED_UPSTREAM", "FAILED_EXEC_TIMEOUT", "COMPLETED", "FAILED_SERVER_ERROR"];
    ended.forEach((status, i) => store.updateRun(store.createRun(newRun("train", T0 + i)), { status }));
    store.createRun(newRun("train", T0 + 10)); // PENDING
    const statuses = (status: string) => store.listRuns({ status }).map((r) => r.status);
    expect(statuses("FAILED").sort()).toEqual([
      "FAILED",
      "FAILED_CANCELED",
      "FAILED_EXEC_TIMEOUT",
      "FAILED_SERVER_ERROR",
      "FAILED_UPSTREAM",
    ]);
    expect(statuses("failed_canceled")).toEqual(["FAILED_CANCELED"]);
    expect(statuses("COMPLETED")).toEqual(["COMPLETED"]);
    expect(statuses("PENDING")).toEqual(["PENDING"]);
    expect(statuses("RUNNING")).toEqual([]);
  });

  it("refuses a status no run can have, listing the ones there are", () => {
    const store = openStore();
    let error: unknown;
    try {
      store.listRuns({ status: "BOGUS" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TroupeError);
    expect((error as TroupeError).kind).toBe("usage");
    expect((error as TroupeError).code).toBe("E_UNKNOWN_STATUS");
    expect((error as TroupeError).message).toMatch(/no run status `BOGUS`; the statuses are PENDING, RUNNING, .*FAILED_CANCELED/);
  });

  it("knows every status the engine gives a run", () => {
    expect([...RUN_STATUSES].sort()).toEqual(Object.values(WorkflowStatus).sort());
  });

  it("matches a part of the name, in any case, with LIKE's wildcards taken literally", () => {
    const store = openStore();
    for (const name of ["ddp-train", "train-ddp-2", "inference", "a_b", "axb"]) store.createRun(newRun(name));
    const names = (name: string) =>
      store
        .listRuns({ name })
        .map((r) => r.name)
        .sort();
    expect(names("ddp")).toEqual(["ddp-train", "train-ddp-2"]);
    expect(names("DDP")).toEqual(["ddp-train", "train-ddp-2"]);
    expect(names("a_b")).toEqual(["a_b"]);
    expect(names("%")).toEqual([]);
  });

  it("says what an empty listing was filtered by", () => {
    expect(describeFilters({ status: "FAILED" })).toBe("with status FAILED");
    expect(describeFilters({ status: "FAILED", name: "ddp", user: undefined })).toBe("with status FAILED, whose name contains `ddp`");
    expect(describeFilters({})).toBe("");
  });
});

describe("reasons, cancel requests and reused tasks", () => {
  it("fills in each attempt's reason from its last transition when an older database is brought up to date", () => {
    const home = mkdtempSync(join(tmpdir(), "troupe-migrate-"));
    homes.push(home);
    const db = new Database(join(home, "troupe.db"));
    migrate(db, MIGRATIONS.slice(0, 6));
    db.exec(`INSERT INTO runs (id, name, seq, status, spec, runtime, submit_time) VALUES ('wf-1', 'wf', 1, 'FAILED', '', 'host', 0);
      INSERT INTO groups (run_id, idx, name, status) VALUES ('wf-1', 0, 'g', 'FAILED');
      INSERT INTO tasks (run_id, group_idx, task_idx, name, lead, status, retry_id) VALUES ('wf-1', 0, 0, 't', 1, 'RESCHEDULED', 0);
      UPDATE tasks SET retry_id = 1, status = 'FAILED', exit_code = 137;
      INSERT INTO transitions (run_id, subject, group_idx, task_idx, retry_id, from_status, to_status, reason, time) VALUES
        ('wf-1', 'task', 0, 0, 0, 'RUNNING', 'RESCHEDULED', 'exited with 1: RESCHEDULE', 5),
        ('wf-1', 'task', 0, 0, 1, 'INITIALIZING', 'RUNNING', 'command started', 6),
        ('wf-1', 'task', 0, 0, 1, 'RUNNING', 'FAILED', 'exited with 137', 7),
        ('wf-1', 'task', 0, 0, 0, 'SCHEDULING', 'INITIALIZING', 'preparing', 1);`);
    db.close();
    const store = RunStore.open(home);
    stores.push(store);
    expect(store.getRun("wf-1")!.groups[0]!.tasks[0]!.reason).toBe("exited with 137");
    expect(store.attempts("wf-1").map((a) => a.reason)).toEqual(["exited with 1: RESCHEDULE", "exited with 137"]);
  });

  it("keeps a cancel request for the run's process to find; once forced, it stays forced", () => {
    const store = openStore();
    const id = store.createRun(newRun("wf"));
    expect(store.cancelRequests.get(id)).toBeUndefined();
    store.cancelRequests.request(id, { force: true, reason: "first", time: 1 });
    store.cancelRequests.request(id, { force: false, reason: "second", time: 2 });
    expect(store.cancelRequests.get(id)).toEqual({ force: true, reason: "second", time: 2 });
  });

  it("gives a task taken over by a restart the log of its attempt in the run it ran in", () => {
    const store = openStore();
    const first = store.createRun(newRun("wf"));
    store.updateTask(first, 0, 0, { retryId: 1, status: "COMPLETED", exitCode: 0, reason: "exited with 0" });
    const second = store.createRun(newRun("wf"));
    store.updateTask(second, 0, 0, { status: "COMPLETED", exitCode: 0, reason: reusedReason(first), reusedFrom: first });
    const [attempt] = store.attempts(second);
    expect(attempt).toMatchObject({ reused_from: first, log_path: store.logPath(first, "g", "t", 1), reason: reusedReason(first) });
    expect(store.attempts(first)[1]!.reused_from).toBeUndefined();
  });
});
