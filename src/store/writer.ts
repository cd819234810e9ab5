/**
 * Writes runs into troupe.db: a new run whole, and batches of queued
 * operations in one transaction each. Statements are prepared once and bound
 * positionally (the cheapest binding); an update sets only the columns it
 * carries, with one cached statement per set of columns. A task's attempt row
 * follows its task row by trigger (see migrations.ts).
 */
import type Database from "better-sqlite3";
import type { NewRun, StatusUpdate } from "./types.js";
import type { WriteOp } from "./write-queue.js";

/** Statuses a run, its groups and tasks (and each new task attempt) have before the engine's first transition. */
export const INITIAL_STATUS = { run: "PENDING", group: "SUBMITTING", task: "SUBMITTING" } as const;

type Table = "runs" | "groups" | "tasks";
type Value = string | number | null;

/** Update fields and their columns, in bit order of the statement cache key. */
const COLUMNS = [
  ["status", "status"],
  ["startTime", "start_time"],
  ["endTime", "end_time"],
  ["exitCode", "exit_code"],
  ["ip", "ip"],
  ["gpus", "gpus"],
  ["reason", "reason"],
  ["handle", "handle"],
  ["reusedFrom", "reused_from"],
] as const;
/**
 * Runs have status and times only; groups also their GPUs and their handle in the pool; tasks an exit code, an
 * address and a reason; groups and tasks the run a restart took them over from.
 */
const RUN_FIELDS = 0b000000111;
const GROUP_FIELDS = 0b110100111;
const TASK_FIELDS = 0b101011111;

const WHERE: Record<Table, string> = {
  runs: "id = ?",
  groups: "run_id = ? AND idx = ?",
  tasks: "run_id = ? AND group_idx = ? AND task_idx = ?",
};

export class RunWriter {
  private readonly updates = new Map<string, Database.Statement<Value[]>>();
  private readonly insertRun;
  private readonly insertGroup;
  private readonly insertTask;
  private readonly insertTransition;
  private readonly nextSeq;
  private readonly startAttempt;
  readonly writeOps: (ops: WriteOp[]) => void;
  readonly create: (run: NewRun) => string;

  constructor(private readonly db: Database.Database) {
    this.insertRun = db.prepare<Value[]>(
      `INSERT INTO runs (id, name, seq, status, spec, runtime, submit_time, owner, user, pool, variables, priority, labels, base_dir, rendered_spec)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertGroup = db.prepare<Value[]>(`INSERT INTO groups (run_id, idx, name, status) VALUES (?, ?, ?, ?)`);
    this.insertTask = db.prepare<Value[]>(
      `INSERT INTO tasks (run_id, group_idx, task_idx, name, lead, status, retry_id) VALUES (?, ?, ?, ?, ?, ?, 0)`,
    );
    this.insertTransition = db.prepare<Value[]>(
      `INSERT INTO transitions (run_id, subject, group_idx, task_idx, retry_id, from_status, to_status, reason, time)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.nextSeq = db.prepare<[string], number>(`SELECT COALESCE(MAX(seq), 0) + 1 FROM runs WHERE name = ?`).pluck();
    // Changes nothing when the task is already at that retry: the update then applies to the current attempt.
    this.startAttempt = db.prepare<Value[]>(
      `UPDATE tasks SET retry_id = ?, status = ?, exit_code = ?, ip = ?, start_time = ?, end_time = ?, reason = ?
       WHERE ${WHERE.tasks} AND retry_id != ?`,
    );
    // IMMEDIATE: the run's number is read and used under one write lock, so concurrent troupes never pick the same id.
    const create = db.transaction((run: NewRun) => this.insertNewRun(run));
    this.create = (run) => create.immediate(run);
    this.writeOps = db.transaction((ops: WriteOp[]) => {
      for (const op of ops) this.apply(op);
    });
  }

  private insertNewRun(run: NewRun): string {
    const seq = this.nextSeq.get(run.name) as number;
    const runId = `${run.name}-${seq}`;
    this.insertRun.run(
      runId,
      run.name,
      seq,
      INITIAL_STATUS.run,
      run.specText,
      run.runtime,
      run.submitTime,
      run.owner ?? null,
      run.user ?? null,
      run.pool ?? null,
      run.variables ? JSON.stringify(run.variables) : null,
      run.priority ?? null,
      run.labels ? JSON.stringify(run.labels) : null,
      run.baseDir ?? null,
      run.renderedSpec ?? null,
    );
    run.groups.forEach((g, group) => {
      this.insertGroup.run(runId, group, g.name, INITIAL_STATUS.group);
      g.tasks.forEach((t, task) => this.insertTask.run(runId, group, task, t.name, t.lead ? 1 : 0, INITIAL_STATUS.task));
    });
    return runId;
  }

  private apply(op: WriteOp): void {
    switch (op.kind) {
      case "transition": {
        const { subject: s, from, to, reason, time } = op.transition;
        const group = s.kind === "run" ? null : s.group;
        const [task, retryId] = s.kind === "task" ? [s.task, s.retryId] : [null, null];
        this.insertTransition.run(op.runId, s.kind, group, task, retryId, from, to, reason, time);
        return;
      }
      case "run":
        this.update("runs", [op.runId], op.update, RUN_FIELDS);
        return;
      case "group":
        this.update("groups", [op.runId, op.group], op.update, GROUP_FIELDS);
        return;
      case "task": {
        const key = [op.runId, op.group, op.task];
        const u = op.update;
        if (u.retryId !== undefined) {
          const fresh = {
            retryId: u.retryId,
            status: u.status ?? INITIAL_STATUS.task,
            exitCode: u.exitCode ?? null,
            ip: u.ip ?? null,
            startTime: u.startTime ?? null,
            endTime: u.endTime ?? null,
            reason: u.reason ?? null,
          } satisfies Required<Omit<StatusUpdate, "gpus" | "handle" | "reusedFrom">>;
          const { retryId, status, exitCode, ip, startTime, endTime, reason } = fresh;
          if (this.startAttempt.run(retryId, status, exitCode, ip, startTime, endTime, reason, ...key, retryId).changes > 0) {
            // The op as written, every field of the new attempt set: passed on (RunStoreOptions.onCommit)
            // and applied again to a record that had it already (live-record.ts), it gives the same row.
            // Where a task was taken from is the task's, not the attempt's: set when given, kept otherwise.
            if (u.reusedFrom !== undefined) this.update("tasks", key, { reusedFrom: u.reusedFrom }, TASK_FIELDS);
            op.update = u.reusedFrom !== undefined ? { ...fresh, reusedFrom: u.reusedFrom } : fresh;
            return;
          }
        }
        this.update("tasks", key, u, TASK_FIELDS);
        return;
      }
    }
  }

  private update(table: Table, key: Value[], u: StatusUpdate, allowed: number): void {
    let mask = 0;
    const values: Value[] = [];
    for (let bit = 0; bit < COLUMNS.length; bit++) {
      const value = u[(COLUMNS[bit] as (typeof COLUMNS)[number])[0]];
      if (value === undefined || (allowed & (1 << bit)) === 0) continue;
      mask |= 1 << bit;
      values.push(Array.isArray(value) ? JSON.stringify(value) : value);
    }
    if (mask === 0) return;
    this.updateStatement(table, mask).run(...values, ...key);
  }

  private updateStatement(table: Table, mask: number): Database.Statement<Value[]> {
    const cacheKey = `${table}:${mask}`;
    let statement = this.updates.get(cacheKey);
    if (statement === undefined) {
      const sets = COLUMNS.filter((_, bit) => (mask & (1 << bit)) !== 0).map(([, column]) => `${column} = ?`);
      statement = this.db.prepare<Value[]>(`UPDATE ${table} SET ${sets.join(", ")} WHERE ${WHERE[table]}`);
      this.updates.set(cacheKey, statement);
    }
    return statement;
  }
}
