/**
 * The records of a run as troupe gives them out: what the store reads back,
 * `troupe query --output json` prints and the API returns (GET
 * /api/workflow/{id}, .../events, the listing). Times are ISO 8601 with
 * milliseconds. Here, not in store/, so that the CLI and the web UI read them
 * without the store.
 */
import type { Priority } from "./priorities.js";

/** A run as `troupe run --output json` and `troupe query` print it. */
export interface RunRecord {
  id: string;
  name: string;
  status: string;
  submit_time: string;
  start_time: string | null;
  end_time: string | null;
  /** Server runs only: the pool it was submitted to, who submitted it, its priority and labels. */
  pool?: string;
  user?: string;
  priority?: Priority;
  labels?: Record<string, string>;
  /** Server runs: tags added after submission (`workflow tag`). */
  tags?: string[];
  groups: GroupRecord[];
}

/** A run's fields that say where it was submitted and how it is labelled: present on server runs only. */
export type ServerRunFields = Pick<RunRecord, "pool" | "user" | "priority" | "labels" | "tags">;

export interface GroupRecord {
  name: string;
  status: string;
  start_time: string | null;
  end_time: string | null;
  /** A group a restart took over (COMPLETED, never run in this run): the run it ran in. */
  reused_from?: string;
  tasks: TaskRecord[];
}

export interface TaskRecord {
  name: string;
  lead: boolean;
  status: string;
  exit_code: number | null;
  retry_id: number;
  ip: string | null;
  start_time: string | null;
  end_time: string | null;
  /** Why the attempt is where it is: the reason of its last change (null in records made before troupe kept it). */
  reason: string | null;
  /** A task a restart took over (COMPLETED, never run in this run): the run its outputs and log are in. */
  reused_from?: string;
  /** A verbose query's: every attempt of the task, in retry order. */
  attempts?: AttemptSummary[];
}

/** One attempt of a task as a verbose query shows it. */
export type AttemptSummary = Pick<AttemptRecord, "retry_id" | "status" | "exit_code" | "ip" | "start_time" | "end_time" | "reason">;

/** One attempt (retry) of a task. The store gives `log_path` relative to TROUPE_HOME, RunStore.attempts absolute. */
export interface AttemptRecord {
  group: string;
  task: string;
  retry_id: number;
  status: string;
  exit_code: number | null;
  ip: string | null;
  start_time: string | null;
  end_time: string | null;
  reason: string | null;
  /**
   * A task a restart took over from an earlier run (never run in this one): that run, and `log_path` is
   * the log of its attempt there.
   */
  reused_from?: string;
  log_path: string;
}

/** One status change of a run (group and task null), a group (task null) or a task attempt. */
export interface TransitionRecord {
  group: string | null;
  task: string | null;
  retry_id: number | null;
  from: string | null;
  to: string;
  reason: string;
  time: string;
}

/** A run as listings show it (`troupe list`, GET /api/workflow): its own fields and how many tasks it has. */
export interface RunSummary {
  id: string;
  name: string;
  status: string;
  submit_time: string;
  start_time: string | null;
  end_time: string | null;
  pool?: string;
  user?: string;
  priority?: Priority;
  labels?: Record<string, string>;
  tags?: string[];
  task_count: number;
}
