/** The records troupe keeps of every run (SQLite under $TROUPE_HOME) and their JSON form. */

import type { Priority } from "../model/index.js";

export { PRIORITIES, type Priority } from "../model/index.js";

/** A run as `troupe run --output json` and `troupe query` print it. Times are ISO 8601 with milliseconds. */
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

export interface GroupRecord {
  name: string;
  status: string;
  start_time: string | null;
  end_time: string | null;
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
  /** A verbose query's: every attempt of the task, in retry order. */
  attempts?: AttemptSummary[];
}

/** One attempt of a task as a verbose query shows it. */
export type AttemptSummary = Pick<AttemptRecord, "retry_id" | "status" | "exit_code" | "ip" | "start_time" | "end_time" | "reason">;

/** What a run is created with: its groups and tasks in plan order. */
export interface NewRun {
  name: string;
  specText: string;
  /** Where it runs: runtime and isolation, for the record. */
  runtime: string;
  submitTime: number;
  groups: Array<{ name: string; tasks: Array<{ name: string; lead: boolean }> }>;
  /** The process driving the run (an opaque token): a run whose owner is gone can be settled. */
  owner?: string;
  /** Server runs: who submitted it, to which pool, with which template variables, priority and labels. */
  user?: string;
  pool?: string;
  variables?: { set: Record<string, string>; setString: Record<string, string>; env?: Record<string, string> };
  /** Local runs: the directory the spec's `localpath` files are found from (a restart reads them there again). */
  baseDir?: string;
  priority?: Priority;
  labels?: Record<string, string>;
  /** The spec after templating, as it was planned (`workflow spec` shows it; `--template` the spec as written). */
  renderedSpec?: string;
}

/** What a run was submitted with (a restart submits it again). */
export interface SubmissionRecord {
  spec: string;
  set: Record<string, string>;
  setString: Record<string, string>;
  /** Environment set in every task (`--set-env`). */
  env: Record<string, string>;
  /** The spec after templating; undefined for runs recorded before it was kept. */
  renderedSpec?: string;
  /** NORMAL and none for runs recorded without them. */
  priority: Priority;
  labels: Record<string, string>;
  /** Where the spec's `localpath` files are found from (local runs recorded with it). */
  baseDir?: string;
}

/** Identifies what a status change is about: the run, one of its groups, or a task attempt. */
export type Subject = { kind: "run" } | { kind: "group"; group: number } | { kind: "task"; group: number; task: number; retryId: number };

export interface Transition {
  subject: Subject;
  from: string | null;
  to: string;
  reason: string;
  /** Epoch milliseconds. */
  time: number;
}

/** What a group holds in its pool while it runs, kept for a resumed run and not part of the record. */
export interface GroupHoldings {
  /** Which GPUs (indices) each member has. */
  gpus: number[][] | null;
  /** The durable id of its handle (port GroupHandle.id). */
  handle: string | null;
}

/** Fields of a run, group or task attempt that change while it runs (epoch ms for times). */
export interface StatusUpdate {
  status?: string;
  startTime?: number | null;
  endTime?: number | null;
  exitCode?: number | null;
  ip?: string | null;
  retryId?: number;
  /** Groups: which GPUs (indices) each member has while the group holds them; not part of the record. */
  gpus?: number[][] | null;
  /** Groups: the durable id of the group's handle in its pool (port GroupHandle.id); not part of the record. */
  handle?: string | null;
  /** Tasks: the reason of the change (what `troupe query` shows beside the status). */
  reason?: string | null;
}

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

/** Who an API token belongs to. */
export interface TokenOwner {
  name: string;
  admin: boolean;
}

export interface TransitionRecord {
  group: string | null;
  task: string | null;
  retry_id: number | null;
  from: string | null;
  to: string;
  reason: string;
  time: string;
}

/** One attempt (retry) of a task. `log_path` is relative to TROUPE_HOME. */
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

export interface ListRunsOptions {
  /** At most this many runs (all when absent). */
  limit?: number;
  /** A run status (RUN_STATUSES); FAILED matches every FAILED_* too. Any other is a usage error. */
  status?: string;
  /** Runs whose workflow name contains this (case-insensitive). */
  name?: string;
  user?: string;
  /** Submitted by any of these users (with `user`, by that one too). */
  users?: readonly string[];
  pool?: string;
  priority?: Priority;
  /**
   * Runs that have every one of these labels: with this value, with a value one of `patterns` matches (`*` any
   * run of characters), or (neither) any value.
   */
  labels?: ReadonlyArray<{ key: string; value?: string; patterns?: readonly string[] }>;
  /** Runs that have none of these label keys. */
  noLabels?: readonly string[];
  /** Runs that have any one of these tags. */
  tags?: readonly string[];
  /** By submit time: newest first (desc, the default) or oldest first. */
  order?: "asc" | "desc";
  /** Runs submitted at or after / before these epoch ms. */
  since?: number;
  until?: number;
  /** Skip this many (pagination). */
  offset?: number;
}

export interface RunStoreOptions {
  /** Longest a queued write waits before it is flushed (default 50 ms). */
  flushIntervalMs?: number;
  /** Flush as soon as this many operations are queued (default 1000). */
  maxQueuedOperations?: number;
  /** How long a write waits for another process's lock (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Called when a flush started by the timer fails; its operations stay queued
   * and are tried again. (Flushes that the caller starts throw instead.)
   */
  onError?: (error: unknown) => void;
  /**
   * Called with the updates of each flush once they are committed, in order
   * (the server passes them to the thread that answers queries, which keeps
   * its own records of running runs with them: `applyUpdates`), and the runs
   * the flush wrote anything of, transitions included (for those who follow them).
   */
  onCommit?: (updates: StoreUpdate[], runs: string[]) => void;
}

/** One committed update of a run, a group or a task. */
export type StoreUpdate =
  | { kind: "run"; runId: string; update: StatusUpdate }
  | { kind: "group"; runId: string; group: number; update: StatusUpdate }
  | { kind: "task"; runId: string; group: number; task: number; update: StatusUpdate };

/** Counters of the write path, for tests and benchmarks. */
export interface StoreStats {
  /** recordTransition/update* calls accepted. */
  calls: number;
  /** Operations written after merging consecutive updates of a row. */
  operations: number;
  /** Transactions that wrote queued operations. */
  flushes: number;
}
