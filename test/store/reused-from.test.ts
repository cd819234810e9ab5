/**
 * Where a restart took a group or task over from is data (`reused_from` of
 * groups and tasks, migration 9): written through the recorder's updates,
 * read back in the records and the attempts, followed by a restart of a
 * restart; runs recorded before it are read from their reasons, once, when
 * the database is migrated.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { migrate, MIGRATIONS, schemaVersion } from "../../src/store/migrations.js";
import { completedGroups, RunStore, type NewRun } from "../../src/store/index.js";

const homes: string[] = [];
const stores: RunStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function newHome(): string {
  const home = mkdtempSync(join(tmpdir(), "troupe-reused-"));
  homes.push(home);
  return home;
}

function open(home: string): RunStore {
  const store = RunStore.open(home);
  stores.push(store);
  return store;
}

/** A workflow of two groups: `make` (task maker) and `use` (task user). */
const SHAPE = {
  groups: [
    { name: "make", tasks: [{ name: "maker" }] },
    { name: "use", tasks: [{ name: "user" }] },
  ],
};
const newRun = (): NewRun => ({
  name: "wf",
  specText: "",
  runtime: "host/none",
  submitTime: 1_000,
  groups: SHAPE.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => ({ name: t.name, lead: true })) })),
});
const reason = (from: string) => `completed in run ${from}: its outputs are reused`;

describe("reused_from", () => {
  it("is read from the reasons of runs recorded before it, once, when an old database is migrated", () => {
    const home = newHome();
    const db = new Database(join(home, "troupe.db"));
    migrate(db, MIGRATIONS.slice(0, 8));
    // wf-1 made (maker's second attempt) and failed; wf-2, its restart, took `make` over and failed again.
    db.exec(`
      INSERT INTO runs (id, name, seq, status, spec, runtime, submit_time) VALUES
        ('wf-1', 'wf', 1, 'FAILED', '', 'host', 0), ('wf-2', 'wf', 2, 'FAILED', '', 'host', 10);
      INSERT INTO groups (run_id, idx, name, status) VALUES
        ('wf-1', 0, 'make', 'COMPLETED'), ('wf-1', 1, 'use', 'FAILED'), ('wf-2', 0, 'make', 'COMPLETED'), ('wf-2', 1, 'use', 'FAILED');
      INSERT INTO tasks (run_id, group_idx, task_idx, name, lead, status, retry_id, reason) VALUES
        ('wf-1', 0, 0, 'maker', 1, 'RESCHEDULED', 0, 'exited with 1: RESCHEDULE'),
        ('wf-1', 1, 0, 'user', 1, 'FAILED', 0, 'exited with 2'),
        ('wf-2', 0, 0, 'maker', 1, 'COMPLETED', 0, '${reason("wf-1")}'),
        ('wf-2', 1, 0, 'user', 1, 'FAILED', 0, 'exited with 2');
      UPDATE tasks SET retry_id = 1, status = 'COMPLETED', exit_code = 0, reason = 'exited with 0' WHERE run_id = 'wf-1' AND name = 'maker';
      INSERT INTO transitions (run_id, subject, group_idx, task_idx, retry_id, from_status, to_status, reason, time) VALUES
        ('wf-1', 'group', 0, NULL, NULL, 'RUNNING', 'COMPLETED', 'every task completed', 5),
        ('wf-2', 'task', 0, 0, 0, 'WAITING', 'COMPLETED', '${reason("wf-1")}', 11),
        ('wf-2', 'group', 0, NULL, NULL, 'WAITING', 'COMPLETED', '${reason("wf-1")}', 11),
        ('wf-2', 'group', 1, NULL, NULL, 'RUNNING', 'FAILED', '${reason("a run with spaces")}', 12);`);
    db.close();

    const store = open(home);
    const [make, use] = store.getRun("wf-2")!.groups;
    expect(make).toMatchObject({ name: "make", reused_from: "wf-1", tasks: [{ name: "maker", reused_from: "wf-1" }] });
    expect(use).not.toHaveProperty("reused_from");
    expect(use!.tasks[0]).not.toHaveProperty("reused_from");
    expect(
      store
        .getRun("wf-1")!
        .groups.flatMap((g) => [g, ...g.tasks])
        .some((x) => "reused_from" in x),
    ).toBe(false);
    // The reused task's attempt has the log of the maker's last attempt where it ran.
    expect(store.attempts("wf-2")[0]).toMatchObject({
      task: "maker",
      reused_from: "wf-1",
      log_path: store.logPath("wf-1", "make", "maker", 1),
    });
    // A restart of wf-2 takes `make` over with its outputs in wf-1, where it ran.
    expect(completedGroups(store, "wf-2", SHAPE)).toEqual(
      new Map([[0, { from: "wf-1", tasks: [{ outputDir: join(store.runDir("wf-1"), "outputs", "maker", "1"), exitCode: 0 }] }]]),
    );
    store.close();
    const raw = new Database(join(home, "troupe.db"));
    expect(schemaVersion(raw)).toBe(MIGRATIONS.length);
    raw.close();
  });

  it("is written by the recorder's updates and given in the records (as the live record keeps it), whatever the reasons say", () => {
    const store = open(newHome());
    const first = store.createRun(newRun());
    store.updateTask(first, 0, 0, { status: "COMPLETED", exitCode: 0, reason: "exited with 0" });
    store.updateGroup(first, 0, { status: "COMPLETED" });
    const second = store.createRun(newRun());
    store.keepLive(second);
    expect(store.runJson(second)!.json).not.toContain("reused_from");
    // The reason is for people; it is not read.
    store.updateTask(second, 0, 0, { status: "COMPLETED", exitCode: 0, reason: "taken over", reusedFrom: first });
    store.updateGroup(second, 0, { status: "COMPLETED", reusedFrom: first });
    const third = store.createRun(newRun());
    // Said only in a reason (as the engine did before the field): not taken for a restart's origin.
    store.updateTask(third, 0, 0, { status: "COMPLETED", exitCode: 0, reason: reason(second) });
    store.updateGroup(third, 0, { status: "COMPLETED" });

    const record = store.getRun(second)!;
    expect(record.groups[0]).toMatchObject({ reused_from: first, tasks: [{ reused_from: first, reason: "taken over" }] });
    expect(store.runJson(second)!.json).toBe(JSON.stringify(record));
    expect(completedGroups(store, second, SHAPE).get(0)?.from).toBe(first);
    expect(completedGroups(store, third, SHAPE).get(0)?.from).toBe(third);
    expect(store.getRun(third)!.groups[0]).not.toHaveProperty("reused_from");

    // A new attempt keeps it (it is the task's), null clears it.
    store.updateTask(second, 1, 0, { reusedFrom: first });
    store.updateTask(second, 1, 0, { retryId: 1, status: "WAITING" });
    expect(store.getRun(second)!.groups[1]!.tasks[0]).toMatchObject({ retry_id: 1, reused_from: first });
    store.updateTask(second, 1, 0, { reusedFrom: null });
    expect(store.getRun(second)!.groups[1]!.tasks[0]).not.toHaveProperty("reused_from");
    expect(store.runJson(second)!.json).toBe(JSON.stringify(store.getRun(second)));
  });

  it("is followed back through restarts of restarts to the run a group ran in", () => {
    const store = open(newHome());
    const ran = store.createRun(newRun());
    store.updateTask(ran, 0, 0, { retryId: 2, status: "COMPLETED", exitCode: 0 });
    store.updateGroup(ran, 0, { status: "COMPLETED" });
    let previous = ran;
    for (let i = 0; i < 3; i++) {
      const next = store.createRun(newRun());
      store.updateTask(next, 0, 0, { status: "COMPLETED", exitCode: 0, reusedFrom: previous });
      store.updateGroup(next, 0, { status: "COMPLETED", reusedFrom: previous });
      previous = next;
    }
    expect(completedGroups(store, previous, SHAPE)).toEqual(
      new Map([[0, { from: ran, tasks: [{ outputDir: join(store.runDir(ran), "outputs", "maker", "2"), exitCode: 0 }] }]]),
    );
    expect(store.attempts(previous)[0]).toMatchObject({ reused_from: store.getRun(previous)!.groups[0]!.reused_from });
  });
});
