/**
 * A task a restart took over never ran in the restarted run: its output and
 * log are those of its attempt in the run it ran in, which the task's
 * `reused_from` names. Its attempts are given that log.
 */
import type Database from "better-sqlite3";
import type { AttemptRecord } from "./types.js";

export class ReusedLogs {
  private readonly latestLog;

  constructor(db: Database.Database) {
    this.latestLog = db
      .prepare<[string, string], string>(
        `SELECT a.log_path FROM task_attempts a
         JOIN tasks t ON t.run_id = a.run_id AND t.group_idx = a.group_idx AND t.task_idx = a.task_idx
         WHERE a.run_id = ? AND t.name = ? ORDER BY a.retry_id DESC LIMIT 1`,
      )
      .pluck();
  }

  /** The attempts, those of reused tasks with the log of the task's latest attempt where it ran. */
  resolve(attempts: AttemptRecord[]): AttemptRecord[] {
    return attempts.map((attempt) => {
      const from = attempt.reused_from;
      const original = from === undefined ? undefined : this.latestLog.get(from, attempt.task);
      return original === undefined ? attempt : { ...attempt, log_path: original };
    });
  }
}
