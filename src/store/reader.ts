/**
 * Reads runs back from troupe.db: the queries; the records are built from
 * their rows in record-rows.ts.
 */
import type Database from "better-sqlite3";
import type { AttemptRecord, GroupHoldings, ListRunsOptions, Priority, RunRecord, RunSummary, SubmissionRecord, TransitionRecord } from "./types.js";
import {
  isoTime,
  runRecord,
  serverFields,
  transitionRecord,
  type AttemptRow,
  type RunRow,
  type TaskRow,
  type TransitionRow,
  type GroupRow,
} from "./record-rows.js";
import { nameCondition, statusCondition } from "./run-filter.js";

const RUN_COLUMNS = "id, name, status, submit_time, start_time, end_time, user, pool, priority, labels, tags";

export class RunReader {
  private readonly run;
  private readonly groups;
  private readonly tasks;
  private readonly transitionRows;
  private readonly attemptRows;
  private readonly exactId;
  private readonly idsWithPrefix;
  private readonly taskCounts;
  private readonly groupGpuRows;
  private readonly groupHandleRows;

  constructor(private readonly db: Database.Database) {
    this.run = db.prepare<[string], RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`);
    this.groups = db.prepare<[string], GroupRow>(
      `SELECT idx, name, status, start_time, end_time, reused_from FROM groups WHERE run_id = ? ORDER BY idx`,
    );
    this.tasks = db.prepare<[string], TaskRow>(
      `SELECT group_idx, name, lead, status, exit_code, retry_id, ip, start_time, end_time, reason, reused_from
       FROM tasks WHERE run_id = ? ORDER BY group_idx, task_idx`,
    );
    this.transitionRows = db.prepare<[string], TransitionRow>(
      `SELECT g.name AS group_name, t.name AS task_name, tr.retry_id, tr.from_status, tr.to_status, tr.reason, tr.time
       FROM transitions tr
       LEFT JOIN groups g ON g.run_id = tr.run_id AND g.idx = tr.group_idx
       LEFT JOIN tasks t ON t.run_id = tr.run_id AND t.group_idx = tr.group_idx AND t.task_idx = tr.task_idx
       WHERE tr.run_id = ? ORDER BY tr.time, tr.id`,
    );
    this.attemptRows = db.prepare<[string], AttemptRow>(
      `SELECT g.name AS group_name, t.name AS task_name, a.retry_id, a.status, a.exit_code, a.ip, a.start_time, a.end_time, a.reason, t.reused_from, a.log_path
       FROM task_attempts a
       JOIN groups g ON g.run_id = a.run_id AND g.idx = a.group_idx
       JOIN tasks t ON t.run_id = a.run_id AND t.group_idx = a.group_idx AND t.task_idx = a.task_idx
       WHERE a.run_id = ? ORDER BY a.group_idx, a.task_idx, a.retry_id`,
    );
    this.exactId = db.prepare<[string], string>(`SELECT id FROM runs WHERE id = ?`).pluck();
    this.idsWithPrefix = db
      .prepare<[{ prefix: string }], string>(`SELECT id FROM runs WHERE substr(id, 1, length(@prefix)) = @prefix LIMIT 2`)
      .pluck();
    this.taskCounts = db
      .prepare<[string], number>(
        `SELECT (SELECT COUNT(*) FROM tasks t WHERE t.run_id = g.run_id AND t.group_idx = g.idx)
         FROM groups g WHERE g.run_id = ? ORDER BY g.idx`,
      )
      .pluck();
    this.groupGpuRows = db.prepare<[string], string | null>(`SELECT gpus FROM groups WHERE run_id = ? ORDER BY idx`).pluck();
    this.groupHandleRows = db.prepare<[string], string | null>(`SELECT handle FROM groups WHERE run_id = ? ORDER BY idx`).pluck();
  }

  getRun(id: string): RunRecord | undefined {
    const run = this.run.get(id);
    return run && runRecord(run, this.groups.all(id), this.tasks.iterate(id));
  }

  listRuns(options: ListRunsOptions): RunSummary[] {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: options.limit ?? -1, offset: options.offset ?? 0 };
    for (const condition of [
      options.status !== undefined ? statusCondition(options.status) : undefined,
      options.name !== undefined ? nameCondition(options.name) : undefined,
    ]) {
      if (!condition) continue;
      where.push(condition.sql);
      Object.assign(params, condition.params);
    }
    for (const key of ["user", "pool", "priority"] as const) {
      const value = options[key];
      if (value === undefined) continue;
      where.push(`${key} = @${key}`);
      params[key] = value;
    }
    if (options.users !== undefined) {
      const names = options.users.map((user, i) => ((params[`user${i}`] = user), `@user${i}`));
      where.push(names.length > 0 ? `user IN (${names.join(", ")})` : "0");
    }
    // Keys are label keys (no quotes, checked by the caller); JSON paths quote them whole, so `.` and `/` are plain characters.
    (options.labels ?? []).forEach(({ key, value, patterns }, i) => {
      params[`labelPath${i}`] = `$."${key}"`;
      if (patterns !== undefined) {
        // Label values have no GLOB metacharacters but the selector's `*` (checked by the caller).
        const each = patterns.map((pattern, p) => {
          params[`labelPattern${i}_${p}`] = pattern;
          return `json_extract(labels, @labelPath${i}) GLOB @labelPattern${i}_${p}`;
        });
        where.push(`(${each.join(" OR ") || "0"})`);
      } else if (value === undefined) where.push(`json_type(labels, @labelPath${i}) IS NOT NULL`);
      else {
        where.push(`json_extract(labels, @labelPath${i}) = @labelValue${i}`);
        params[`labelValue${i}`] = value;
      }
    });
    (options.noLabels ?? []).forEach((key, i) => {
      params[`noLabelPath${i}`] = `$."${key}"`;
      where.push(`(labels IS NULL OR json_type(labels, @noLabelPath${i}) IS NULL)`);
    });
    if (options.tags !== undefined) {
      const tags = options.tags.map((tag, i) => ((params[`tag${i}`] = tag), `@tag${i}`));
      where.push(`EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value IN (${tags.join(", ") || "NULL"}))`);
    }
    if (options.since !== undefined) {
      where.push("submit_time >= @since");
      params.since = options.since;
    }
    if (options.until !== undefined) {
      where.push("submit_time < @until");
      params.until = options.until;
    }
    const rows = this.db
      .prepare<[typeof params], RunRow & { task_count: number }>(
        `SELECT ${RUN_COLUMNS},
                (SELECT COUNT(*) FROM tasks t WHERE t.run_id = runs.id) AS task_count
         FROM runs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY ${options.order === "asc" ? "submit_time ASC, seq ASC" : "submit_time DESC, seq DESC"} LIMIT @limit OFFSET @offset`,
      )
      .all(params);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      status: r.status,
      submit_time: isoTime(r.submit_time),
      start_time: isoTime(r.start_time),
      end_time: isoTime(r.end_time),
      ...serverFields(r),
      task_count: r.task_count,
    }));
  }

  /** A run's own fields, without its groups and tasks (cheap for a run of any size). */
  runHeader(id: string): { status: string; user: string | null; pool: string | null } | undefined {
    const run = this.run.get(id);
    return run && { status: run.status, user: run.user, pool: run.pool };
  }

  attemptStatus(runId: string, task: string, retryId: number): string | undefined {
    this.attemptStatusRow ??= this.db
      .prepare<[string, string, number], string>(
        `SELECT a.status FROM task_attempts a
         JOIN tasks t ON t.run_id = a.run_id AND t.group_idx = a.group_idx AND t.task_idx = a.task_idx
         WHERE a.run_id = ? AND t.name = ? AND a.retry_id = ?`,
      )
      .pluck();
    return this.attemptStatusRow.get(runId, task, retryId);
  }
  private attemptStatusRow: Database.Statement<[string, string, number], string> | undefined;

  submission(runId: string): SubmissionRecord | undefined {
    const row = this.db
      .prepare<
        [string],
        {
          spec: string;
          variables: string | null;
          priority: Priority | null;
          labels: string | null;
          base_dir: string | null;
          rendered_spec: string | null;
        }
      >("SELECT spec, variables, priority, labels, base_dir, rendered_spec FROM runs WHERE id = ?")
      .get(runId);
    if (!row) return undefined;
    const variables = row.variables
      ? (JSON.parse(row.variables) as { set: Record<string, string>; setString: Record<string, string>; env?: Record<string, string> })
      : undefined;
    return {
      spec: row.spec,
      set: variables?.set ?? {},
      setString: variables?.setString ?? {},
      env: variables?.env ?? {},
      ...(row.rendered_spec !== null ? { renderedSpec: row.rendered_spec } : {}),
      priority: row.priority ?? "NORMAL",
      labels: row.labels ? (JSON.parse(row.labels) as Record<string, string>) : {},
      ...(row.base_dir !== null ? { baseDir: row.base_dir } : {}),
    };
  }

  /** The run's transitions recorded after the one numbered `afterSeq` (0: all), each with its number, in the order recorded. */
  transitionsAfter(runId: string, afterSeq: number): Array<TransitionRecord & { seq: number }> {
    this.transitionsAfterRows ??= this.db.prepare<[string, number], TransitionRow & { seq: number }>(
      `SELECT tr.id AS seq, g.name AS group_name, t.name AS task_name, tr.retry_id, tr.from_status, tr.to_status, tr.reason, tr.time
       FROM transitions tr
       LEFT JOIN groups g ON g.run_id = tr.run_id AND g.idx = tr.group_idx
       LEFT JOIN tasks t ON t.run_id = tr.run_id AND t.group_idx = tr.group_idx AND t.task_idx = tr.task_idx
       WHERE tr.run_id = ? AND tr.id > ? ORDER BY tr.id`,
    );
    return this.transitionsAfterRows.all(runId, afterSeq).map((r) => ({ seq: r.seq, ...transitionRecord(r) }));
  }
  private transitionsAfterRows: Database.Statement<[string, number], TransitionRow & { seq: number }> | undefined;

  transitions(runId: string): TransitionRecord[] {
    return this.transitionRows.all(runId).map(transitionRecord);
  }

  /** Every attempt of every task, with log paths relative to TROUPE_HOME. */
  attempts(runId: string): AttemptRecord[] {
    return this.attemptRows.all(runId).map((r) => ({
      group: r.group_name,
      task: r.task_name,
      retry_id: r.retry_id,
      status: r.status,
      exit_code: r.exit_code,
      ip: r.ip,
      start_time: isoTime(r.start_time),
      end_time: isoTime(r.end_time),
      reason: r.reason,
      ...(r.reused_from !== null ? { reused_from: r.reused_from } : {}),
      log_path: r.log_path,
    }));
  }

  resolveRunId(prefixOrId: string, user?: string): string | undefined {
    if (prefixOrId === "") return undefined;
    if (user !== undefined) return this.resolveUsersRunId(prefixOrId, user);
    const exact = this.exactId.get(prefixOrId);
    if (exact !== undefined) return exact;
    const matches = this.idsWithPrefix.all({ prefix: prefixOrId });
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** resolveRunId among the runs `user` submitted. */
  private resolveUsersRunId(prefixOrId: string, user: string): string | undefined {
    this.usersRunIds ??= this.db
      .prepare<[{ prefix: string; user: string }], string>(
        `SELECT id FROM runs WHERE user = @user AND substr(id, 1, length(@prefix)) = @prefix
         ORDER BY id = @prefix DESC LIMIT 2`,
      )
      .pluck();
    const matches = this.usersRunIds.all({ prefix: prefixOrId, user });
    return matches[0] === prefixOrId || matches.length === 1 ? matches[0] : undefined;
  }
  private usersRunIds: Database.Statement<[{ prefix: string; user: string }], string> | undefined;

  /** How many tasks each group of the run has, in group order; undefined for an unknown run. */
  shape(runId: string): number[] | undefined {
    if (this.exactId.get(runId) === undefined) return undefined;
    return this.taskCounts.all(runId);
  }

  /** Which GPUs each member of each group has (per group: per task; null where the group holds none). */
  /** What each group holds in its pool: its GPUs (per task) and its handle's id (StatusUpdate), or null. */
  groupHoldings(runId: string): GroupHoldings[] {
    const handles = this.groupHandleRows.all(runId);
    return this.groupGpuRows
      .all(runId)
      .map((json, g) => ({ gpus: json === null ? null : (JSON.parse(json) as number[][]), handle: handles[g] ?? null }));
  }
}
