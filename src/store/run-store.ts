/**
 * The history of runs in `$TROUPE_HOME/troupe.db` (SQLite, WAL) and where
 * their logs go. A run is created in one synchronous transaction; everything
 * that happens to it afterwards (transitions, status updates) is queued in
 * memory and written in batches, so a run of 10,000 tasks does not wait on
 * 100,000 single-row transactions. Reads flush first, so this store always
 * sees its own writes; other processes see them once flushed (at most
 * `flushIntervalMs` later). `close()` flushes: call it when a run ends.
 */
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { NotFoundError, TroupeError } from "../errors/index.js";
import { log } from "../util/log.js";
import { runLogDir } from "../model/index.js";
import { CancelRequests } from "./cancel-requests.js";
import { LiveRecord } from "./live-record.js";
import { migrate } from "./migrations.js";
import { setRunOwner, settleOrphanedRuns, settleRuns, unfinishedOwnedRuns, type OwnedRun } from "./orphans.js";
import { checkSegment, DB_FILE, relativeLogPath, relativeRunDir } from "./paths.js";
import { RunReader } from "./reader.js";
import { ReusedLogs } from "./reused-logs.js";
import { setRunTags, tagsInUse } from "./tags.js";
import { TokenTable } from "./tokens.js";
import { CredentialTable } from "./credentials.js";
import type {
  AttemptRecord,
  GroupHoldings,
  ListRunsOptions,
  NewRun,
  RunRecord,
  RunStoreOptions,
  RunSummary,
  StatusUpdate,
  StoreStats,
  StoreUpdate,
  SubmissionRecord,
  Transition,
  TransitionRecord,
} from "./types.js";
import { definedFields, WriteQueue } from "./write-queue.js";
import { RunWriter } from "./writer.js";

const ENDED_KEPT = 8;
const DEFAULTS = { flushIntervalMs: 50, maxQueuedOperations: 1000, busyTimeoutMs: 5000 };

export class RunStore {
  private readonly queue = new WriteQueue();
  private readonly writer: RunWriter;
  private readonly reader: RunReader;
  /** Task counts per group of each run written to, to refuse updates of rows that do not exist. */
  private readonly shapes = new Map<string, number[]>();
  /**
   * Records of runs this process follows, kept in memory (keepLive); null
   * until first read (most runs a server starts are never queried).
   */
  private readonly live = new Map<string, LiveRecord | null>();
  /** The last ENDED_KEPT of them to end (forget), final. */
  private readonly ended = new Map<string, LiveRecord>();
  private readonly counters: StoreStats = { calls: 0, operations: 0, flushes: 0 };
  private readonly flushIntervalMs: number;
  private readonly maxQueuedOperations: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private tokenTable: TokenTable | undefined;
  private credentialTable: CredentialTable | undefined;

  private constructor(
    /** TROUPE_HOME: the database and the runs' directories. */
    readonly home: string,
    private readonly db: Database.Database,
    private readonly options: RunStoreOptions,
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULTS.flushIntervalMs;
    this.maxQueuedOperations = options.maxQueuedOperations ?? DEFAULTS.maxQueuedOperations;
    this.writer = new RunWriter(db);
    this.reader = new RunReader(db);
  }

  /** Opens (creating if needed) `home/troupe.db` and brings its schema up to date. */
  static open(home: string, options: RunStoreOptions = {}): RunStore {
    const path = join(home, DB_FILE);
    let db: Database.Database;
    try {
      // Its own user's only: the database, tokens and every run's logs and outputs are in it.
      mkdirSync(home, { recursive: true, mode: 0o700 });
      db = new Database(path, { timeout: options.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs, nativeBinding: sqliteAddon() });
    } catch (error) {
      throw new TroupeError("E_STORE_OPEN", `cannot open the run history ${path}: ${(error as Error).message}`, "system");
    }
    try {
      db.pragma("journal_mode = WAL");
      // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      migrate(db);
      return new RunStore(home, db, options);
    } catch (error) {
      db.close();
      if (error instanceof TroupeError) throw error;
      throw new TroupeError("E_STORE_OPEN", `cannot use the run history ${path}: ${(error as Error).message}`, "system");
    }
  }

  /**
   * Records a new run with its groups and tasks (all in their initial status); returns its id, `<name>-<n>`.
   * Its directory for logs is made here, unless `makeDirs` is false: the caller then makes it (`runLogDir`) before
   * the run writes anything (a server, off its event loop: a mkdir costs it
   * about a millisecond on these disks, for every run).
   */
  createRun(run: NewRun, makeDirs = true): string {
    this.checkOpen();
    checkSegment("workflow name", run.name);
    for (const group of run.groups) for (const task of group.tasks) checkSegment("task name", task.name);
    const runId = this.writer.create(run);
    this.shapes.set(
      runId,
      run.groups.map((g) => g.tasks.length),
    );
    if (makeDirs) mkdirSync(this.runLogDir(runId), { recursive: true });
    return runId;
  }

  recordTransition(runId: string, t: Transition): void {
    const s = t.subject;
    this.checkTarget(runId, s.kind === "run" ? undefined : s.group, s.kind === "task" ? s.task : undefined);
    this.queue.pushTransition(runId, t);
    this.queued();
  }

  /** Sets the run's status and times (a run has no exit code or address: those fields are ignored). */
  updateRun(runId: string, u: StatusUpdate): void {
    this.checkTarget(runId);
    this.live.get(runId)?.updateRun(u);
    this.queue.pushUpdate({ kind: "run", runId, update: definedFields(u) });
    this.queued();
  }

  /** Sets a group's status and times (exit code and address are ignored). */
  updateGroup(runId: string, group: number, u: StatusUpdate): void {
    this.checkTarget(runId, group);
    this.live.get(runId)?.updateGroup(group, u);
    this.queue.pushUpdate({ kind: "group", runId, group, update: definedFields(u) });
    this.queued();
  }

  /** Updates the task's current attempt; a `retryId` other than the current one starts a new attempt. */
  updateTask(runId: string, group: number, task: number, u: StatusUpdate): void {
    this.checkTarget(runId, group, task);
    this.live.get(runId)?.updateTask(group, task, u);
    this.queue.pushUpdate({ kind: "task", runId, group, task, update: definedFields(u) });
    this.queued();
  }

  /** Writes every queued operation in one transaction. */
  flush(): void {
    this.checkOpen();
    this.clearTimer();
    if (this.queue.size === 0) return;
    const ops = this.queue.drain();
    try {
      this.writer.writeOps(ops);
    } catch (error) {
      this.queue.restore(ops);
      throw error;
    }
    this.counters.flushes += 1;
    this.counters.operations += ops.length;
    if (this.options.onCommit)
      this.options.onCommit(
        ops.filter((op): op is StoreUpdate => op.kind !== "transition"),
        [...new Set(ops.map((op) => op.runId))],
      );
  }

  /**
   * Updates another process or thread committed, for the records kept live
   * here (`keepLive`): how the server's query thread follows running runs.
   */
  applyUpdates(updates: readonly StoreUpdate[]): void {
    for (const u of updates) {
      const live = this.live.get(u.runId);
      // Not read yet: its first read is from the database, which has this update already.
      if (!live) continue;
      if (u.kind === "run") live.updateRun(u.update);
      else if (u.kind === "group") live.updateGroup(u.group, u.update);
      else live.updateTask(u.group, u.task, u.update);
    }
  }

  /** Where run `id`'s task logs go. */
  runLogDir(id: string): string {
    return runLogDir(this.runDir(id));
  }

  getRun(id: string): RunRecord | undefined {
    this.flush();
    return this.reader.getRun(id);
  }

  /** What each group of run `id` holds in its pool (a resumed run keeps it): its GPUs per task and its handle's id. */
  groupHoldings(id: string): GroupHoldings[] {
    this.flush();
    return this.reader.groupHoldings(id);
  }

  /**
   * Keep run `id`'s record in memory while it runs (see live-record.ts), from
   * then on kept by `applyUpdates` (or this store's own writes): `runJson`
   * then reads no database. Until `forget(id)`. `created` is the record as
   * the run was created (createdRunRecord), for a run with no update since;
   * without it the record is read from the database when first asked for
   * (most runs a server starts are never queried). Updates are committed
   * before they are passed on, so that read has every update passed on
   * before it; one passed on again after it is applied again, to the same
   * result (writer.ts passes a new attempt on with all its fields).
   */
  keepLive(id: string, created?: RunRecord): void {
    this.ended.delete(id);
    if (!this.live.get(id)) this.live.set(id, created ? new LiveRecord(created) : null);
  }

  /** Run `id` has ended: its record, if it was read, is kept a while longer for the reads that follow an end. */
  forget(id: string): void {
    const live = this.live.get(id);
    this.live.delete(id);
    this.ended.delete(id);
    if (!live) return;
    this.ended.set(id, live);
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.keys().next().value!);
  }

  /** The run's record as JSON (`getRun`'s, serialized), and its status. */
  runJson(id: string): { status: string; json: string } | undefined {
    let live = this.live.get(id);
    if (live === null) {
      const record = this.getRun(id);
      if (!record) return undefined;
      live = new LiveRecord(record);
      this.live.set(id, live);
    }
    live ??= this.ended.get(id);
    if (live) return { status: live.status, json: live.json() };
    const record = this.getRun(id);
    return record && { status: record.status, json: JSON.stringify(record) };
  }

  /** Runs, newest first. */
  listRuns(options: ListRunsOptions = {}): RunSummary[] {
    this.flush();
    return this.reader.listRuns(options);
  }

  /** The run's transitions in time order. */
  transitions(runId: string): TransitionRecord[] {
    this.flush();
    return this.reader.transitions(runId);
  }

  /** The run's transitions after the one numbered `afterSeq` (0: from the first), each with its number. */
  transitionsAfter(runId: string, afterSeq: number): Array<TransitionRecord & { seq: number }> {
    this.flush();
    return this.reader.transitionsAfter(runId, afterSeq);
  }

  /** Removes then adds tags of run `id`; returns its tags after. */
  setTags(id: string, add: readonly string[], remove: readonly string[]): string[] {
    this.flush();
    const tags = setRunTags(this.db, id, add, remove);
    // A record kept in memory would not show them: it is read again when next asked for.
    const live = this.live.get(id);
    if (live !== undefined) this.live.set(id, null);
    this.ended.delete(id);
    return tags;
  }

  /** Every tag some run has (with `user`, some run of that user's), sorted. */
  tagsInUse(user?: string): string[] {
    this.flush();
    return tagsInUse(this.db, user);
  }

  private reusedLogs: ReusedLogs | undefined;

  /** Every task attempt of the run, with absolute log paths (a reused task's: where it ran, reused-logs.ts). */
  attempts(runId: string): AttemptRecord[] {
    this.flush();
    this.reusedLogs ??= new ReusedLogs(this.db);
    return this.reusedLogs.resolve(this.reader.attempts(runId)).map((a) => ({ ...a, log_path: join(this.home, a.log_path) }));
  }

  /**
   * Settle runs whose owning process is gone (see orphans.ts); returns their ids.
   * `isOwnerAlive` judges the owner tokens given to `createRun`.
   */
  settleOrphanedRuns(isOwnerAlive: (owner: string) => boolean, now = Date.now()): string[] {
    this.flush();
    return settleOrphanedRuns(this.db, isOwnerAlive, now);
  }

  /** Unfinished runs with their owners (a server looks for the runs it may resume). */
  unfinishedOwnedRuns(): OwnedRun[] {
    this.flush();
    return unfinishedOwnedRuns(this.db);
  }

  /** Settles these runs FAILED_SERVER_ERROR with `reason` (see orphans.ts). */
  settleRuns(runs: ReadonlyArray<{ id: string; status: string }>, reason: string, now = Date.now()): void {
    this.flush();
    settleRuns(this.db, runs, reason, now);
  }

  /** The process driving the run from now on. */
  setRunOwner(id: string, owner: string): void {
    this.flush();
    setRunOwner(this.db, id, owner);
  }

  /** Cancels asked of runs by other processes (`troupe cancel`), read by the process driving each. */
  get cancelRequests(): CancelRequests {
    this.checkOpen();
    return (this.cancelTable ??= new CancelRequests(this.db));
  }
  private cancelTable: CancelRequests | undefined;

  /** This home's credentials, sealed with the key beside the database (or TROUPE_CREDENTIAL_KEY_FILE's). */
  get credentials(): CredentialTable {
    return (this.credentialTable ??= new CredentialTable(this.db, this.home));
  }

  /** A server user's credentials (by their token's name): only theirs are seen, set, opened or deleted through it. */
  credentialsOf(user: string): CredentialTable {
    this.checkOpen();
    if (user === "") throw new Error("a server user has a name");
    return new CredentialTable(this.db, this.home, `user:${user}`);
  }

  /** API tokens (the server's users). */
  get tokens(): TokenTable {
    return (this.tokenTable ??= new TokenTable(this.db));
  }

  /** A run's status, user and pool, without reading its groups and tasks. */
  runHeader(id: string): { status: string; user: string | null; pool: string | null } | undefined {
    this.flush();
    return this.reader.runHeader(id);
  }

  /** The status of one task attempt (by task name and retry id). */
  attemptStatus(runId: string, task: string, retryId: number): string | undefined {
    this.flush();
    return this.reader.attemptStatus(runId, task, retryId);
  }

  /** The spec text a run was submitted with, its template variables, priority and labels. */
  submission(runId: string): SubmissionRecord | undefined {
    this.flush();
    return this.reader.submission(runId);
  }

  /** The exact id, else the only id starting with `prefixOrId`, else undefined; with `user`, among that user's runs. */
  resolveRunId(prefixOrId: string, user?: string): string | undefined {
    this.flush();
    return this.reader.resolveRunId(prefixOrId, user);
  }

  runDir(runId: string): string {
    return join(this.home, relativeRunDir(runId));
  }

  /** Where an attempt's stdout and stderr go: `home/runs/<runId>/logs/<task>.<retryId>.log`. */
  logPath(runId: string, groupName: string, taskName: string, retryId: number): string {
    checkSegment("group name", groupName);
    return join(this.home, relativeLogPath(runId, taskName, retryId));
  }

  get stats(): StoreStats {
    return { ...this.counters };
  }

  /** Flushes and closes the database. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.clearTimer();
      this.closed = true;
      this.db.close();
    }
  }

  private queued(): void {
    this.counters.calls += 1;
    if (this.queue.size >= this.maxQueuedOperations) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flushOnTimer(), this.flushIntervalMs);
      // Queued writes must not keep the process alive; close() writes the last of them.
      this.timer.unref();
    }
  }

  private flushOnTimer(): void {
    this.timer = undefined;
    if (this.closed) return;
    try {
      this.flush();
    } catch (error) {
      // Tried again in a moment: the writes stay queued.
      log.warn({ err: error, home: this.home }, "a write to the run history failed; trying again");
      this.options.onError?.(error);
      if (!this.closed && this.timer === undefined) {
        this.timer = setTimeout(() => this.flushOnTimer(), this.flushIntervalMs);
        this.timer.unref();
      }
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new TroupeError("E_STORE_CLOSED", "the run store is closed", "system");
  }

  /** Refuses writes about a run, group or task that does not exist, at the call rather than at the flush. */
  private checkTarget(runId: string, group?: number, task?: number): void {
    this.checkOpen();
    let shape = this.shapes.get(runId);
    if (shape === undefined) {
      shape = this.reader.shape(runId);
      if (shape === undefined) throw new NotFoundError("E_RUN_NOT_FOUND", `no run ${runId}`);
      this.shapes.set(runId, shape);
    }
    if (group === undefined) return;
    const tasks = shape[group];
    if (tasks === undefined || (task !== undefined && (!Number.isInteger(task) || task < 0 || task >= tasks))) {
      const what = task === undefined ? `group ${group}` : `task ${group}.${task}`;
      throw new TroupeError("E_STORE_NO_SUCH_ROW", `run ${runId} has no ${what}`, "system");
    }
  }
}
/**
 * Where better-sqlite3's compiled addon is, found once: given to it, it loads the file at once instead of its
 * `bindings` package trying a dozen places first (2-4 ms of every command's start). Undefined (better-sqlite3
 * searches itself) where the install put it elsewhere.
 */
let addonPath: string | null | undefined;
function sqliteAddon(): string | undefined {
  if (addonPath === undefined) {
    const candidate = join(
      dirname(createRequire(import.meta.url).resolve("better-sqlite3/package.json")),
      "build",
      "Release",
      "better_sqlite3.node",
    );
    addonPath = existsSync(candidate) ? candidate : null;
  }
  return addonPath ?? undefined;
}
