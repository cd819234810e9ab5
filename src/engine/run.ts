/**
 * One workflow run: applies the scheduler's decisions and the runtime's
 * reports to the run's state, through the one transition table, and records
 * every change. The only place statuses are written.
 */
import type { CompiledGroup, CompiledWorkflow } from "../plan/index.js";
import { attemptOutputDir } from "../model/index.js";
import type { MemberOutcome } from "../port/index.js";
import { log, type Log } from "../util/log.js";
import { reusedReason } from "../util/reused-reason.js";
import { aggregateWorkflowStatus } from "./aggregate.js";
import type { RunView } from "./attempt-launch.js";
import { CapacityLedger } from "./capacity-ledger.js";
import { systemClock, type Clock } from "./clock.js";
import { decideExit, groupEndingFor } from "./exit-policy.js";
import { GroupLauncher, LEAD_HEAD_START_MS, stopAttempt, type LaunchSite } from "./group-launch.js";
import { checkImagesAtStart, notStarted, tasksThatFailTheirGroup, type UnavailableImage } from "./image-check.js";
import { planReschedule } from "./restart-in-place.js";
import type { ResumedRun } from "./resume.js";
import { RunState, type GroupState, type TaskState } from "./run-state.js";
import { RunHoldings } from "./run-holdings.js";
import type { RunOptions, RunResult } from "./run-options.js";
import { resumeRun, type ResumeSite } from "./run-resume.js";
import { schedule, type SchedulerAction } from "./scheduler.js";
import { DEFAULT_START_TIMEOUT_MS } from "./start-deadline.js";
import type { PoolMember, PoolPriority } from "./shared-pool.js";
import { PlatformExitCode, isFinal, type GroupStatus, type TaskStatus } from "./statuses.js";
import { unplacedCause } from "./unplaced.js";

export { LEAD_HEAD_START_MS } from "./group-launch.js";
export type { RunOptions, RunResult } from "./run-options.js";

/** A timeout as the reasons say it (`90s`). */
function seconds(ms: number | undefined): string {
  return ms === undefined ? "?" : `${ms / 1000}s`;
}

export class WorkflowRun implements PoolMember {
  private readonly plan: CompiledWorkflow;
  private readonly clock: Clock;
  private readonly groups: GroupState[];
  private readonly tasks: TaskState[][];
  /** What this run has taken of its capacity, or the ledger of the pool it shares. */
  private readonly ledger: CapacityLedger;
  private readonly holdings: RunHoldings;
  private readonly launcher: GroupLauncher;
  private timer: unknown;
  private ticking = false;
  private tickAgain = false;
  private tickRequested = false;
  private canceled = false;
  private finished = false;
  private readonly state: RunState;
  /** The run's own log (util/log.ts): every line carries its id. */
  private readonly log: Log;
  /** What the launch of an attempt is made from (attempt-launch.ts). */
  private readonly view: RunView;
  private resolveDone!: (result: RunResult) => void;
  readonly done = new Promise<RunResult>((resolve) => (this.resolveDone = resolve));

  readonly priority: PoolPriority;

  constructor(private readonly options: RunOptions) {
    this.priority = options.priority ?? "NORMAL";
    options.pool?.join(this);
    this.plan = options.plan;
    this.clock = options.clock ?? systemClock;
    this.state = new RunState(options.runId, this.plan, options.recorder, this.clock, options.onEvent);
    this.groups = this.state.groups;
    this.tasks = this.state.tasks;
    this.ledger = options.pool?.ledger ?? new CapacityLedger(options.capacity);
    this.log = log.child({ run: options.runId });
    const { runId, recorder, dataDir, credentials, defaultMounts, foreignOutputs, foreignStored, dataStore } = options;
    this.view = {
      runId,
      dataStore,
      foreignStored: foreignStored ?? new Map(),
      reusedGroups: new Set(options.reused?.keys() ?? []),
      recorder,
      dataDir,
      credentials,
      defaultMounts: defaultMounts ?? [],
      foreignOutputs: foreignOutputs ?? new Map(),
      plan: this.plan,
      groups: this.groups,
      tasks: this.tasks,
      gpuDevices: this.ledger.gpuDevices,
      taskView: { mounts: options.capabilities?.mounts ?? false, dataPaths: options.capabilities?.dataPaths ?? "host" },
    };
    this.launcher = new GroupLauncher(this.launchSite());
    this.holdings = new RunHoldings({ ...options, groups: this.groups, ledger: this.ledger, member: this });
  }

  /** What the group launcher may use of the run. */
  private launchSite(): LaunchSite {
    const { runId, session, capabilities, durableStarts, leadHeadStartMs } = this.options;
    return {
      runId,
      state: this.state,
      view: this.view,
      clock: this.clock,
      session,
      placement: capabilities?.placement ?? "engine",
      sandboxAtPlacement: capabilities?.sandboxAtPlacement === true,
      localLogs: capabilities?.localLogs ?? true,
      durableStarts: durableStarts === true,
      leadHeadStartMs: leadHeadStartMs ?? LEAD_HEAD_START_MS,
      startTimeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      grace: () => this.grace(),
      outputDirOf: (g, t, retryId) => this.outputDirOf(g, t, retryId),
      onExit: (g, t, retryId, outcome, started) => this.onExit(g, t, retryId, outcome, started),
      finishTask: (g, t, status, reason, code) => this.finishTask(g, t, status, reason, code),
      requestTick: () => this.requestTick(),
      log: this.log,
      data: this.options.data,
      logLost: (g, t, error) => {
        const retry = this.tasks[g]![t]!.retryId;
        const task = this.plan.groups[g]!.tasks[t]!.name;
        this.log.warn({ group: this.plan.groups[g]!.name, task, retry, err: error }, "the copy of the attempt's log failed");
        this.options.onWarning?.(`the log of ${task} (attempt ${retry}) is incomplete: ${error.message}`);
      },
    };
  }

  /** Starts the run; `done` resolves when every group has ended and nothing is left running. */
  start(): Promise<RunResult> {
    if (this.options.resume) return this.resume(this.options.resume);
    const now = this.clock.now();
    this.state.setRun("RUNNING", "run started", { startTime: now });
    this.plan.groups.forEach((_, g) => this.enterWaiting(g));
    this.tick();
    this.checkImages();
    return this.done;
  }

  /** Every image of the groups still to run is made ready now, alongside the first groups (image-check.ts). */
  private checkImages(): void {
    const statuses = this.groups.map((g) => g.status);
    checkImagesAtStart(this.plan, statuses, this.options.session, (unavailable) => this.imageUnavailable(unavailable));
  }

  /** An image of the run cannot be had: the groups it fails fail now, not at their turn. */
  private imageUnavailable({ image, status, message }: UnavailableImage): void {
    for (const { g, t } of tasksThatFailTheirGroup(this.plan, image))
      if (notStarted(this.groups[g]!.status)) {
        const code = status === "FAILED_BACKEND_ERROR" ? PlatformExitCode.BACKEND_ERROR : PlatformExitCode.START_ERROR;
        this.finishTask(g, t, status, `could not start: ${message}`, code);
      }
  }

  /**
   * A group as the run's start leaves it: WAITING with its tasks, or COMPLETED
   * when a restart takes it over. Only what is still SUBMITTING moves: a
   * resumed run whose start the last process did not commit in full (killed
   * right after the submission, or between two of a big start's batches)
   * catches up here instead of staying PENDING for ever.
   */
  private enterWaiting(g: number): void {
    const group = this.plan.groups[g]!;
    const waiting = "waiting for upstream groups";
    if (this.groups[g]!.status === "SUBMITTING") this.state.setGroup(g, "WAITING", waiting);
    group.tasks.forEach((_, t) => {
      if (this.tasks[g]![t]!.status === "SUBMITTING") this.state.setTask(g, t, "WAITING", waiting);
    });
    const reused = this.options.reused?.get(g);
    if (!reused || this.groups[g]!.status !== "WAITING") return;
    const reason = reusedReason(reused.from);
    group.tasks.forEach((_, t) => {
      const task = reused.tasks[t]!;
      this.tasks[g]![t]!.outputDir = task.outputDir;
      this.tasks[g]![t]!.exitCode = task.exitCode;
      if (this.tasks[g]![t]!.status === "WAITING")
        this.state.setTask(g, t, "COMPLETED", reason, { exitCode: task.exitCode, reusedFrom: reused.from });
    });
    this.state.setGroup(g, "COMPLETED", reason, { reusedFrom: reused.from });
  }

  /** Resumes a run from its recorded state (run-resume.ts). */
  private resume(resumed: ResumedRun): Promise<RunResult> {
    resumeRun(this.resumeSite(), resumed);
    this.tick();
    this.checkImages();
    return this.done;
  }

  /** What resuming may use of the run. */
  private resumeSite(): ResumeSite {
    return {
      state: this.state,
      plan: this.plan,
      clock: this.clock,
      launcher: this.launcher,
      outputDirOf: (g, t, retryId) => this.outputDirOf(g, t, retryId),
      reused: this.options.reused,
      enterWaiting: (g) => this.enterWaiting(g),
      reserve: (g, had) => this.reserve(g, had),
      newAttempt: (g, t, status, reason) => this.newAttempt(g, t, status, reason),
      finishTask: (g, t, status, reason, code) => this.finishTask(g, t, status, reason, code),
    };
  }

  /** Cancel: every unfinished group fails as canceled (with `reason`, if given) and its tasks are stopped. */
  cancel(force = false, reason?: string): void {
    this.canceled = true;
    const grace = force ? 0 : (this.options.stopGraceMs ?? 5_000);
    const why = (reason ?? "canceled") + (force ? " (forced)" : "");
    this.plan.groups.forEach((_, g) => {
      if (!isFinal(this.groups[g]!.status)) this.endGroup(g, "FAILED_CANCELED", why, "FAILED_CANCELED", grace);
      else if (force) this.stopMembers(g, 0);
    });
    this.tick();
  }

  // ---- scheduling -------------------------------------------------------

  /** The pool's call (SharedPool.wakeOthers, at the top of a turn of the event loop): a scheduling pass now. */
  wake(): void {
    this.tick();
  }

  /**
   * Events arrive in bursts (many exits in one turn of the event loop): one
   * scheduling pass after the burst instead of one per event.
   */
  private requestTick(): void {
    if (this.tickRequested) return;
    this.tickRequested = true;
    setImmediate(() => {
      this.tickRequested = false;
      this.tick();
    });
  }

  private tick(): void {
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.tickAgain = false;
        if (this.timer !== undefined) this.clock.clearTimer(this.timer);
        this.timer = undefined;
        const now = this.clock.now();
        const pool = this.options.pool;
        const decision = this.canceled
          ? { actions: [], wakeAt: undefined }
          : schedule({
              plan: this.plan,
              groups: this.groups,
              capacity: this.ledger.capacity,
              used: this.ledger.usedForScheduling(),
              activeTasks: this.ledger.activeTasks,
              maxParallel: pool?.maxParallel ?? this.options.maxParallel,
              mayAdmit: pool?.mayAdmit(this) ?? true,
              now,
              focus: this.focusNow(),
            });
        for (const action of decision.actions) this.apply(action, now);
        pool?.setBlocked(this, this.state.focus.schedulingCount > 0);
        if (decision.wakeAt !== undefined) this.timer = this.clock.setTimer(() => this.tick(), decision.wakeAt - now);
      } while (this.tickAgain);
    } finally {
      this.ticking = false;
    }
    this.maybeFinish();
  }

  /** What the scheduling pass looks at: the groups that may have something to do, not all (scheduling-focus.ts). */
  private focusNow() {
    const focus = this.state.focus;
    return {
      waiting: focus.takeWaiting(),
      running: focus.running,
      schedulingFrom: focus.schedulingFrom,
      schedulingCount: focus.schedulingCount,
    };
  }

  private apply(action: SchedulerAction, now: number): void {
    const g = action.group;
    const group = this.plan.groups[g] as CompiledGroup;
    switch (action.kind) {
      case "enqueue":
        this.groups[g]!.queuedAt = now;
        this.state.setGroup(g, "SCHEDULING", "upstream groups completed; waiting for resources");
        group.tasks.forEach((_, t) => this.state.setTask(g, t, "SCHEDULING", "waiting for resources"));
        break;
      case "fail-upstream": {
        const upstream = this.plan.groups[action.upstream]?.name ?? "?";
        this.endGroup(
          g,
          "FAILED_UPSTREAM",
          `upstream group ${upstream} did not complete`,
          "FAILED_UPSTREAM",
          0,
          PlatformExitCode.UPSTREAM_FAILED,
        );
        break;
      }
      case "queue-timeout":
        this.endGroup(
          g,
          "FAILED_QUEUE_TIMEOUT",
          `waited longer than the queue timeout (${seconds(this.plan.timeouts.queueMs)}) for resources${unplacedCause(this.state, g)}`,
          "FAILED_QUEUE_TIMEOUT",
          0,
        );
        break;
      case "exec-timeout":
        this.endGroup(
          g,
          "FAILED_EXEC_TIMEOUT",
          `ran longer than the exec timeout (${seconds(this.plan.timeouts.execMs)})`,
          "FAILED_EXEC_TIMEOUT",
          this.grace(),
        );
        break;
      case "admit":
        this.reserve(g);
        if (this.options.capabilities?.placement === "cluster") {
          // SCHEDULING until the cluster has placed every member (group-launch.ts), its queue timeout running.
          this.groups[g]!.placing = true;
          this.state.setGroup(g, "SCHEDULING", "submitted to the cluster: waiting for it to place the group");
          // Another pass now: it sets the wake-up for the group's queue timeout.
          this.tickAgain = true;
        } else {
          this.state.setGroup(g, "INITIALIZING", "admitted: resources reserved");
          group.tasks.forEach((_, t) => this.state.setTask(g, t, "INITIALIZING", "preparing its sandbox"));
        }
        void this.launcher.launch(
          g,
          group.tasks.map((_, t) => t),
        );
        break;
    }
  }

  /** Takes group g's capacity; `had`: the GPUs its members had before troupe restarted. */
  private reserve(g: number, had?: number[][] | null): void {
    this.holdings.take(g, had);
  }

  /** Moves a task on to its next attempt, in `status`. */
  private newAttempt(g: number, t: number, status: TaskStatus, reason: string): void {
    const state = this.tasks[g]![t]!;
    state.retryId += 1;
    state.status = null;
    state.exitCode = null;
    state.unplaced = undefined;
    state.outputDir = this.outputDirOf(g, t, state.retryId);
    const ended = isFinal(status) ? { endTime: this.clock.now() } : { endTime: null };
    this.state.setTask(g, t, status, reason, { retryId: state.retryId, exitCode: null, startTime: null, ...ended });
  }

  /** Once a group has ended and nothing of it is alive, what it holds returns to the pool. */
  private releaseIfDone(g: number): void {
    if (!this.holdings.giveBackIfDone(g)) return;
    this.launcher.close(g);
    this.requestTick();
  }

  /** Where attempt `retryId` of task t writes `{{output}}`. */
  private outputDirOf(g: number, t: number, retryId: number): string {
    return attemptOutputDir(this.options.dataDir, this.plan.groups[g]!.tasks[t]!.name, retryId);
  }

  // ---- endings ----------------------------------------------------------

  /** Attempt `retryId` of task t ended, however (group-launch.ts reports each end once). */
  private onExit(g: number, t: number, retryId: number, outcome: MemberOutcome, started: boolean): void {
    const state = this.tasks[g]![t]!;
    this.groups[g]!.live--;
    // Ends the pool caused (an eviction, a lost member) are rare and worth a line; a command's exit is in the record.
    if (outcome.kind !== "exited") {
      const group = this.plan.groups[g]!;
      this.log.info({ group: group.name, task: group.tasks[t]!.name, retry: retryId, outcome }, "attempt ended by the pool");
    }
    if (state.retryId === retryId) {
      state.attempt = undefined;
      if (!isFinal(state.status ?? "WAITING")) this.decideExit(g, t, outcome, started);
      else if (state.exitCode === null && outcome.kind === "exited") this.state.recordExitCode(g, t, outcome.code);
    }
    this.releaseIfDone(g);
    this.requestTick();
  }

  private decideExit(g: number, t: number, outcome: MemberOutcome, started: boolean): void {
    const task = this.plan.groups[g]!.tasks[t]!;
    const decision = decideExit(outcome, {
      exitActions: task.exitActions,
      poolExitActions: this.options.poolExitActions,
      retryId: this.tasks[g]![t]!.retryId,
      maxRetries: this.options.maxRetries,
      started,
    });
    if (decision.kind === "finish") this.finishTask(g, t, decision.status, decision.reason, decision.exitCode);
    else this.reschedule(g, t, decision.exitCode, decision.reason);
  }

  /**
   * RESCHEDULE: a new attempt in a fresh sandbox; the lead (or any member, without ignoreNonleadStatus) restarts
   * its siblings, in place where their runtime can (restart-in-place.ts).
   */
  private reschedule(g: number, t: number, code: number, why: string): void {
    const group = this.plan.groups[g] as CompiledGroup;
    const cause = group.tasks[t]!.name;
    const views = this.tasks[g]!.map(({ status, attempt }) => ({
      status,
      restartsInPlace: attempt !== undefined && attempt.handle.canRestart(attempt.key),
    }));
    const { fresh: members, inPlace } = planReschedule(group, t, views);
    const restarted = inPlace.map((i) => this.launcher.restartInPlace(g, i, cause));
    const stops: Array<Promise<void>> = [];
    for (const i of members) {
      const state = this.tasks[g]![i]!;
      const reason = i === t ? why : `restarted with ${cause} in a fresh sandbox`;
      if (i === t) this.state.recordExitCode(g, i, code);
      this.state.setTask(g, i, "RESCHEDULED", reason, { endTime: this.clock.now() });
      if (state.attempt) stops.push(stopAttempt(state.attempt, this.grace()));
      state.attempt = undefined;
    }
    void Promise.all(stops).then(() => {
      const ended = this.groups[g]!.endedAs;
      if (ended) {
        // The group ended (cancel, timeout, lead) while these waited for their next attempt:
        // the next attempt takes the group's outcome instead of running.
        for (const i of members) this.newAttempt(g, i, ended.status, ended.reason);
        return;
      }
      for (const i of members) this.newAttempt(g, i, "INITIALIZING", "new attempt in a fresh sandbox");
      // The restarted members pass the barrier again, together.
      void this.launcher.launch(g, members, restarted);
    });
  }

  private finishTask(g: number, t: number, status: TaskStatus, reason: string, exitCode: number | null): void {
    const group = this.plan.groups[g] as CompiledGroup;
    this.state.setTask(g, t, status, reason, { exitCode, endTime: this.clock.now() });
    this.tasks[g]![t]!.exitCode = exitCode;
    if (isFinal(this.groups[g]!.status)) return;
    const ending = groupEndingFor(group, group.tasks[t]!, status);
    if (ending) this.endGroup(g, ending.status, ending.reason, ending.taskStatus, this.grace(), null, ending.taskReason);
  }

  /** A group ends: its unfinished tasks take `taskStatus` and whatever still runs is stopped. */
  private endGroup(
    g: number,
    status: GroupStatus,
    reason: string,
    taskStatus: TaskStatus,
    graceMs: number,
    exitCode: number | null = null,
    taskReason = reason,
  ): void {
    const now = this.clock.now();
    const state = this.groups[g]!;
    if (isFinal(state.status)) return;
    state.endedAs = { status: taskStatus, reason: taskReason };
    this.state.setGroup(g, status, reason, { endTime: now });
    this.plan.groups[g]!.tasks.forEach((_, t) => {
      const task = this.tasks[g]![t]!;
      if (task.status !== null && isFinal(task.status)) return;
      this.state.setTask(g, t, taskStatus, taskReason, { endTime: now, ...(exitCode !== null ? { exitCode } : {}) });
      if (exitCode !== null) task.exitCode = exitCode;
    });
    this.stopMembers(g, graceMs);
    this.releaseIfDone(g);
    // Downstream groups learn of the failure now, not when the last member has exited.
    this.requestTick();
  }

  private stopMembers(g: number, graceMs: number): void {
    for (const { attempt } of this.tasks[g]!) if (attempt) void stopAttempt(attempt, graceMs);
  }

  private grace(): number {
    return this.options.stopGraceMs ?? 5_000;
  }

  private maybeFinish(): void {
    if (this.finished || !this.state.focus.allEnded) return;
    if (!this.groups.every((g) => isFinal(g.status) && g.live === 0)) return;
    this.finished = true;
    this.options.pool?.leave(this);
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    const status = aggregateWorkflowStatus(this.groups.map((g) => g.status));
    this.state.setRun(status, status === "COMPLETED" ? "every group completed" : "a group did not complete", { endTime: this.clock.now() });
    this.resolveDone({ status });
  }
}
