/**
 * What the store is given and asked: new runs, status updates, transitions,
 * listing options. The records it gives back are the model's (model/records.ts).
 */

import type { Priority } from "../model/index.js";

export { PRIORITIES, type Priority } from "../model/index.js";
export type {
  AttemptRecord,
  AttemptSummary,
  GroupRecord,
  RunRecord,
  RunSummary,
  ServerRunFields,
  TaskRecord,
  TransitionRecord,
} from "../model/index.js";

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
  /**
   * Groups and tasks a restart took over (recorded COMPLETED, never run in this run): the run they ran in, where
   * their outputs and logs are (the record's `reused_from`). Kept across a task's new attempts.
   */
  reusedFrom?: string | null;
}

/** Who an API token belongs to. */
export interface TokenOwner {
  name: string;
  admin: boolean;
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
