/**
 * Runs whose process died (kill -9, a crash, a reboot) would stay RUNNING for
 * ever. Settling marks them, and their unfinished groups and tasks,
 * FAILED_SERVER_ERROR, with a transition that says why.
 */
import type Database from "better-sqlite3";

const UNFINISHED = `status NOT IN ('COMPLETED', 'RESCHEDULED') AND status NOT LIKE 'FAILED%'`;
export const ORPHAN_STATUS = "FAILED_SERVER_ERROR";

export function settleOrphanedRuns(db: Database.Database, isOwnerAlive: (owner: string) => boolean, now: number): string[] {
  const candidates = db
    .prepare<[], { id: string; owner: string; status: string }>(
      `SELECT id, owner, status FROM runs WHERE owner IS NOT NULL AND ${UNFINISHED}`,
    )
    .all();
  const dead = candidates.filter((run) => !isOwnerAlive(run.owner));
  if (dead.length === 0) return [];
  const reason = "the troupe process running it ended before the run did";
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
      db.prepare(`UPDATE tasks SET status = ?, end_time = COALESCE(end_time, ?) WHERE run_id = ? AND ${UNFINISHED}`).run(
        ORPHAN_STATUS,
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
  return dead.map((run) => run.id);
}
