/**
 * Runs whose process died (kill -9, a crash, a reboot) would stay RUNNING for
 * ever. Settling marks them, and their unfinished groups and tasks,
 * FAILED_SERVER_ERROR, with a transition that says why.
 */
import type Database from "better-sqlite3";
import { FINAL_STATUSES } from "../model/index.js";
import { sqlList } from "./sql-list.js";

const UNFINISHED = `status NOT IN (${sqlList(FINAL_STATUSES)})`;
export const ORPHAN_STATUS = "FAILED_SERVER_ERROR";

export interface OwnedRun {
  id: string;
  owner: string;
  status: string;
}

/** Unfinished runs that some process owns. */
export function unfinishedOwnedRuns(db: Database.Database): OwnedRun[] {
  return db.prepare<[], OwnedRun>(`SELECT id, owner, status FROM runs WHERE owner IS NOT NULL AND ${UNFINISHED}`).all();
}

/** A process takes over a run (a server resuming the runs of the one before it). */
export function setRunOwner(db: Database.Database, id: string, owner: string): void {
  db.prepare(`UPDATE runs SET owner = ? WHERE id = ?`).run(owner, id);
}

export function settleOrphanedRuns(db: Database.Database, isOwnerAlive: (owner: string) => boolean, now: number): string[] {
  const dead = unfinishedOwnedRuns(db).filter((run) => !isOwnerAlive(run.owner));
  settleRuns(db, dead, "the troupe process running it ended before the run did", now);
  return dead.map((run) => run.id);
}

/** Marks the runs, and their unfinished groups and tasks, FAILED_SERVER_ERROR with `reason`. */
export function settleRuns(db: Database.Database, dead: ReadonlyArray<Omit<OwnedRun, "owner">>, reason: string, now: number): void {
  if (dead.length === 0) return;
  const insertTransition = db.prepare(
    `INSERT INTO transitions (run_id, subject, group_idx, task_idx, retry_id, from_status, to_status, reason, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const unfinishedGroups = db.prepare<[string], { idx: number; status: string }>(
    `SELECT idx, status FROM groups WHERE run_id = ? AND ${UNFINISHED}`,
  );
  const unfinishedTasks = db.prepare<[string], { group_idx: number; task_idx: number; retry_id: number; status: string }>(
    `SELECT group_idx, task_idx, retry_id, status FROM tasks WHERE run_id = ? AND ${UNFINISHED}`,
  );
  const settle = db.transaction(() => {
    for (const run of dead) {
      for (const t of unfinishedTasks.all(run.id))
        insertTransition.run(run.id, "task", t.group_idx, t.task_idx, t.retry_id, t.status, ORPHAN_STATUS, reason, now);
      for (const g of unfinishedGroups.all(run.id))
        insertTransition.run(run.id, "group", g.idx, null, null, g.status, ORPHAN_STATUS, reason, now);
      insertTransition.run(run.id, "run", null, null, null, run.status, ORPHAN_STATUS, reason, now);
      db.prepare(`UPDATE tasks SET status = ?, reason = ?, end_time = COALESCE(end_time, ?) WHERE run_id = ? AND ${UNFINISHED}`).run(
        ORPHAN_STATUS,
        reason,
        now,
        run.id,
      );
      db.prepare(`UPDATE groups SET status = ?, end_time = COALESCE(end_time, ?) WHERE run_id = ? AND ${UNFINISHED}`).run(
        ORPHAN_STATUS,
        now,
        run.id,
      );
      db.prepare(`UPDATE runs SET status = ?, end_time = COALESCE(end_time, ?) WHERE id = ?`).run(ORPHAN_STATUS, now, run.id);
    }
  });
  settle.immediate();
}
