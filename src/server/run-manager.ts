/**
 * The server's runs: a submitted spec is validated, planned, recorded with
 * who submitted it and to which pool, then run in this process on the pool's
 * runtime (drive/drive-run.ts); running runs can be canceled, and those an
 * earlier server left running resumed. What is this file's own: the limits
 * and queueing of submissions, who owns a run, the resume bookkeeping.
 */
import { driveRun, recordRun, type DrivenRun, type EngineSettings } from "../drive/index.js";
import { SharedPool } from "../engine/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import { killKeptTasks } from "../runtime/index.js";
import type { Diagnostic } from "../spec/index.js";
import { isFailure, type Priority, type ReusedGroups, type RunRecord } from "../model/index.js";
import { completedGroups, createdRunRecord, type OwnedRun, type RunStore } from "../store/index.js";
import { log } from "../util/log.js";
import { isProcessTokenAlive, keptOwnerProcess, keptOwnerToken } from "../util/process-identity.js";
import { didYouMean } from "../util/suggest.js";
import { refusal, type Refusal } from "./error-reply.js";
import { poolLimits, workerPlanner, type Planner, type PlanShape } from "./plan-submission.js";
import { poolLoad, type Pool, type PoolLoad } from "./pool.js";
import { resumableRun, runningGpus, type ResumableRun } from "./resumable-run.js";
import { checkedCredentialUse, ownerCredentials, submittedCredentials, type RunCredentials } from "./run-credentials.js";

export type { Pool } from "./pool.js";

export interface Submission {
  spec: string;
  set: Record<string, string>;
  setString: Record<string, string>;
  /** Set in every task's environment (`--set-env`). */
  env: Record<string, string>;
  user: string;
  pool: string;
  dryRun: boolean;
  /** Recorded with the run (it does not order scheduling yet). */
  priority: Priority;
  /** The submission's labels; the run's are the spec's workflow.labels overridden by these. */
  labels: Record<string, string>;
}

export type SubmitResult =
  | { kind: "invalid"; diagnostics: Diagnostic[] }
  | Refusal
  | { kind: "validated"; name: string; groups: number; tasks: number; warnings?: Diagnostic[]; plan?: PlanShape }
  | { kind: "submitted"; id: string; warnings?: Diagnostic[] };

/** What the HTTP API asks of the run manager (app.ts); the HTTP thread's proxy has the same shape. */
export interface RunControl {
  submit(submission: Submission): Promise<SubmitResult>;
  restart(previousId: string, user: string): Promise<SubmitResult & { kind: "submitted" | "refused" | "invalid" }>;
  /** `message`: why, recorded as the reason of the cancel. */
  cancel(id: string, force: boolean, message?: string): boolean | Promise<boolean>;
  /** Each pool's capacity and load (none where there are no pools: `troupe ui`'s local history). */
  poolLoads?(): PoolLoad[] | Promise<PoolLoad[]>;
}

/** Who is told when runs start and end here (the records the HTTP side keeps live). */
export interface RunObserver {
  /** `created`: the run's record as it was created, where it has not changed since (see RunStore.keepLive). */
  started(id: string, created?: RunRecord): void;
  ended(id: string): void;
}

interface ActiveRun {
  user: string;
  driven: DrivenRun;
  /** The run has ended; what it made (networks, containers) is being removed. */
  closing?: boolean;
  done: Promise<void>;
}

export class RunManager implements RunControl {
  private readonly active = new Map<string, ActiveRun>();
  /** Each pool's capacity, shared by its runs and ordered by their priority. */
  private readonly shared = new Map<string, SharedPool>();
  private draining = false;

  /** Submissions of each user being planned or launched (not yet in `active`). */
  private readonly starting = new Map<string, number>();

  constructor(
    private readonly store: RunStore,
    private readonly pools: ReadonlyMap<string, Pool>,
    private readonly limits: { maxTasks: number; maxRunsPerUser: number },
    /** By default the store keeps the records of running runs in memory for queries (store/live-record.ts). */
    private readonly observer: RunObserver = {
      started: (id, created) => store.keepLive(id, created),
      ended: (id) => store.forget(id),
    },
    /** Validates, renders and plans submissions: in worker threads, so the engines' thread never waits for it. */
    private readonly planner: Planner = workerPlanner(),
  ) {
    for (const pool of pools.values()) this.shared.set(pool.name, new SharedPool(pool.capacity, pool.maxParallel));
  }

  async submit(submission: Submission): Promise<SubmitResult> {
    const checked = await this.check(submission);
    if (checked.kind !== "planned") return checked;
    try {
      if (!checked.plan) throw new Error("the planner answered without a plan");
      // The submitter's credentials, opened before the run is recorded: one they do not have refuses it.
      const credentials = submittedCredentials(this.store, submission.user, checked.plan);
      if ("kind" in credentials) return credentials;
      const id = await this.launch(checked.plan, checked.pool, { ...submission, rendered: checked.rendered }, credentials);
      return { kind: "submitted", id, warnings: checked.warnings };
    } finally {
      checked.release();
    }
  }

  /**
   * A new run of a failed workflow (same spec, same variables) that runs only
   * the groups that did not complete; the completed ones are taken over with
   * their outputs.
   */
  async restart(previousId: string, user: string): Promise<SubmitResult & { kind: "submitted" | "refused" | "invalid" }> {
    const previous = this.store.getRun(previousId);
    const submitted = this.store.submission(previousId);
    if (!previous || !submitted) return refusal("not-found", "E_NO_WORKFLOW", `no workflow ${previousId}`);
    if (!isFailure(previous.status))
      return refusal("conflict", "E_NOT_RESTARTABLE", `workflow ${previousId} is ${previous.status}; only a failed workflow is restarted`);
    const submission: Submission = { ...submitted, user, pool: previous.pool ?? "default", dryRun: false };
    const checked = await this.check(submission);
    if (checked.kind !== "planned") return checked.kind === "validated" ? refusal("system", "E_INTERNAL", "unexpected") : checked;
    try {
      if (!checked.plan) return refusal("system", "E_INTERNAL", "unexpected");
      // The restarting user's credentials (the new run is theirs).
      const credentials = submittedCredentials(this.store, user, checked.plan);
      if ("kind" in credentials) return credentials;
      const reused = completedGroups(this.store, previousId, checked.plan);
      return {
        kind: "submitted",
        id: await this.launch(checked.plan, checked.pool, { ...submission, rendered: checked.rendered }, credentials, reused),
      };
    } finally {
      checked.release();
    }
  }

  /** Everything that can refuse a submission, then its plan (its size only, for a dry run). */
  private async check(submission: Submission): Promise<
    | Exclude<SubmitResult, { kind: "submitted" }>
    | {
        kind: "planned";
        plan?: CompiledWorkflow;
        rendered?: string;
        pool: Pool;
        tasks: number;
        warnings: Diagnostic[];
        release: () => void;
      }
  > {
    if (this.draining) return refusal("unavailable", "E_SHUTTING_DOWN", "the server is shutting down: it takes no new workflows");
    const pool = this.pools.get(submission.pool);
    if (!pool) return refusal("not-found", "E_NO_POOL", unknownPool(submission.pool, this.pools.keys()));
    // A run that has ended counts no more while it removes what it made (a resumed run's sweep takes a while).
    // Those being planned count too: many sent at once must not all pass before any has started.
    const running =
      [...this.active.values()].filter((e) => e.user === submission.user && !e.closing).length + (this.starting.get(submission.user) ?? 0);
    if (!submission.dryRun && running >= this.limits.maxRunsPerUser)
      return refusal(
        "limit",
        "E_TOO_MANY_RUNS",
        `${submission.user} has ${running} workflows running, the most this server allows at once; wait for one to end`,
      );
    const release = submission.dryRun ? () => undefined : this.holdStart(submission.user);
    let reply;
    try {
      reply = await this.planner({
        user: submission.user,
        spec: submission.spec,
        set: submission.set,
        setString: submission.setString,
        env: submission.env,
        pool: poolLimits(pool),
        maxTasks: this.limits.maxTasks,
        wantPlan: !submission.dryRun,
      });
    } catch (error) {
      release();
      throw error;
    }
    if (reply.kind !== "planned") {
      release();
      return reply;
    }
    const { warnings } = reply;
    if (submission.dryRun) {
      // What a submission would refuse, a dry run refuses too: a credential or key the submitter does not have.
      const refused = checkedCredentialUse(this.store, submission.user, reply.credentialUses);
      if (refused) return refused;
      return { kind: "validated", name: reply.name, groups: reply.groups, tasks: reply.tasks, warnings, plan: reply.shape };
    }
    return { kind: "planned", plan: reply.plan, rendered: reply.rendered, pool, tasks: reply.tasks, warnings, release };
  }

  /** Counts a submission of `user` as running until it is launched (or refused); the returned function lets go, once. */
  private holdStart(user: string): () => void {
    this.starting.set(user, (this.starting.get(user) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.starting.get(user) ?? 1) - 1;
      if (left > 0) this.starting.set(user, left);
      else this.starting.delete(user);
    };
  }

  /** Records the run and runs it in the background; returns its id. */
  private async launch(
    plan: CompiledWorkflow,
    pool: Pool,
    submission: Submission & { rendered?: string },
    credentials: RunCredentials,
    reused?: ReusedGroups,
  ): Promise<string> {
    // Its log directory is made as it starts (driveRun), off the event loop.
    const { id, created } = recordRun(
      this.store,
      plan,
      pool.backend,
      {
        specText: submission.spec,
        variables: { set: submission.set, setString: submission.setString, env: submission.env },
        renderedSpec: submission.rendered,
        user: submission.user,
        pool: pool.name,
        priority: submission.priority,
        labels: { ...plan.labels, ...submission.labels },
        // Kept tasks outlive this server; the next one resumes the run.
        keepTasks: true,
      },
      false,
    );
    this.runInBackground(
      id,
      submission.user,
      plan,
      pool,
      { reused, priority: submission.priority, ...credentials },
      createdRunRecord(id, created),
    );
    return id;
  }

  /** Drives run `id` in this process until it ends and is recorded. */
  private runInBackground(
    id: string,
    user: string,
    plan: CompiledWorkflow,
    pool: Pool,
    /** How it starts (or resumes), and its owner's credentials. */
    from: Pick<EngineSettings, "reused" | "resume" | "priority"> & RunCredentials,
    created?: RunRecord,
  ): void {
    const { registryAuth, ...engineFrom } = from;
    const driven = driveRun({
      runId: id,
      plan,
      store: this.store,
      backend: pool.backend,
      driver: "server",
      logFields: { user, pool: pool.name, tasks: plan.taskCount },
      keepTasks: true,
      registryAuth,
      engine: {
        capacity: pool.capacity,
        maxParallel: pool.maxParallel,
        pool: this.shared.get(pool.name),
        durableStarts: true,
        maxRetries: pool.maxRetries,
        startTimeoutMs: pool.startTimeoutMs,
        poolExitActions: pool.exitActions,
        defaultMounts: pool.defaultMounts,
        dataStore: pool.dataStore,
        ...engineFrom,
      },
    });
    const entry: ActiveRun = { user, driven, done: Promise.resolve() };
    this.active.set(id, entry);
    // Queries of a running workflow are answered from memory (store/live-record.ts).
    this.observer.started(id, created);
    entry.done = (async () => {
      const outcome = await driven.ended;
      // GPUs held for its running members (recover) that it never took back.
      if (outcome.kind !== "ended" && from.resume) this.shared.get(pool.name)?.gpuDevices.unhold(runningGpus(from.resume));
      entry.closing = true;
      await driven.done;
      this.observer.ended(id);
      this.active.delete(id);
    })();
  }

  /**
   * Runs a server that ended (killed, crashed, or stopped with SIGTERM) left
   * running with kept tasks: each is resumed on its pool (running attempts
   * re-attached, the rest scheduled as usual) or, when that cannot be, settled
   * FAILED_SERVER_ERROR with the reason. Before the server takes submissions.
   */
  async recover(): Promise<{ resumed: string[]; settled: Array<{ id: string; reason: string }> }> {
    const resumed: string[] = [];
    const settled: Array<{ id: string; reason: string }> = [];
    const settle = (owned: OwnedRun, error: Error) => {
      const reason = `the server restarted and could not resume the run: ${error.message}`;
      log.warn({ run: owned.id, err: error }, "could not resume the run: it is settled FAILED_SERVER_ERROR");
      // Its kept tasks would run on unwatched: they end with the run.
      killKeptTasks(this.store.runDir(owned.id));
      this.store.settleRuns([owned], reason);
      settled.push({ id: owned.id, reason });
    };
    const resumable: Array<{ owned: OwnedRun; run: ResumableRun }> = [];
    for (const owned of this.store.unfinishedOwnedRuns()) {
      const previous = keptOwnerProcess(owned.owner);
      if (previous === undefined || isProcessTokenAlive(previous) || this.active.has(owned.id)) continue;
      try {
        const run = await resumableRun(this.store, this.pools, this.planner, owned.id);
        const { backend } = run.pool;
        if (!backend.capabilities.tasksOutliveTroupe)
          throw new Error(`the pool ${run.pool.name} cannot keep tasks any more (${backend.describe()})`);
        resumable.push({ owned, run });
      } catch (error) {
        settle(owned, error as Error);
      }
    }
    // The GPUs every resumed run's running members are on are kept for them before any run goes on.
    for (const { run } of resumable) this.shared.get(run.pool.name)!.gpuDevices.hold(runningGpus(run.state));
    for (const { owned, run } of resumable) {
      try {
        const { plan, pool, user, state, reused, priority } = run;
        // Its owner's credentials as they are now (a credential deleted meanwhile settles the run, naming it).
        const credentials = ownerCredentials(this.store, user, plan);
        this.store.setRunOwner(owned.id, keptOwnerToken());
        this.runInBackground(owned.id, user, plan, pool, { resume: state, reused, priority, ...credentials });
        resumed.push(owned.id);
      } catch (error) {
        this.shared.get(run.pool.name)!.gpuDevices.unhold(runningGpus(run.state));
        settle(owned, error as Error);
      }
    }
    return { resumed, settled };
  }

  /** False when the run is not running here (ended, or unknown). */
  poolLoads(): PoolLoad[] {
    return [...this.pools.values()].map((pool) => poolLoad(pool, this.shared.get(pool.name)!));
  }

  cancel(id: string, force: boolean, message?: string): boolean {
    const entry = this.active.get(id);
    if (!entry) return false;
    const reason = message === undefined ? undefined : `canceled: ${message}`;
    log.info({ run: id, force, reason }, "cancel requested");
    entry.driven.cancel(force, reason);
    return true;
  }

  /** Takes no new workflows from now on (503). */
  stopTaking(): void {
    this.draining = true;
  }

  /**
   * Waits (at most `timeoutMs`) for the runs that have ended to finish removing what they made:
   * a server that stops leaves running work to the next start, never the leftovers of ended work.
   */
  async endedRunsClosed(timeoutMs: number): Promise<void> {
    const closing = [...this.active.values()].filter((e) => e.closing).map((e) => e.done);
    await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
  }

  /** Takes no new workflows from now on; resolves once every running one has ended and is recorded. */
  async drain(): Promise<void> {
    this.draining = true;
    while (this.active.size > 0) await Promise.all([...this.active.values()].map((e) => e.done));
  }

  get running(): number {
    return this.active.size;
  }

  /** Cancels every running workflow and waits until each has ended and is recorded. */
  async cancelAll(): Promise<void> {
    for (const id of this.active.keys()) this.cancel(id, false);
    await Promise.all([...this.active.values()].map((e) => e.done));
  }
}

/** No pool of that name: which there are, and the likely one. */
function unknownPool(name: string, pools: Iterable<string>): string {
  const names = [...pools].sort();
  const guess = didYouMean(name, names);
  return `no pool named ${name}${guess ? ` (${guess})` : ""}; this server's pools: ${names.join(", ")}`;
}
