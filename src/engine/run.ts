/**
 * One workflow run: applies the scheduler's decisions and the runtime's
 * reports to the run's state, through the one transition table, and records
 * every change. The only place statuses are written.
 */
import { join } from "node:path";
import { exitActionFor, type CompiledGroup, type CompiledWorkflow, type ExitActionRule } from "../plan/index.js";
import { TaskStartError, type ExitInfo, type PreparedMember, type Runtime } from "../runtime/index.js";
import { normalizeName } from "../spec/index.js";
import { reusedReason } from "../util/reused-reason.js";
import { aggregateWorkflowStatus } from "./aggregate.js";
import { attemptLaunch, type RunView } from "./attempt-launch.js";
import { systemClock, type Clock } from "./clock.js";
import { GpuDevices } from "./gpu-devices.js";
import { checkImagesAtStart, notStarted, tasksThatFailTheirGroup, type UnavailableImage } from "./image-check.js";
import type { EngineEvent, RunRecorder } from "./recorder.js";
import { planReschedule } from "./restart-in-place.js";
import type { ResumedRun } from "./resume.js";
import { RunState, type GroupState, type TaskState } from "./run-state.js";
import { schedule, type Capacity, type SchedulerAction } from "./scheduler.js";
import type { PoolMember, PoolPriority, SharedPool } from "./shared-pool.js";
import { PlatformExitCode, isFailure, isFinal, type GroupStatus, type TaskStatus, type WorkflowStatus } from "./statuses.js";

export interface RunOptions {
  runId: string;
  plan: CompiledWorkflow;
  runtime: Runtime;
  recorder: RunRecorder;
  /** The run's data directory: task outputs live under it. */
  dataDir: string;
  capacity: Capacity;
  maxParallel: number;
  /**
   * A pool shared with other runs (the server's): its capacity and task
   * slots replace `capacity` and `maxParallel`, and `priority` orders the
   * runs waiting for it (see shared-pool.ts).
   */
  pool?: SharedPool;
  priority?: PoolPriority;
  /**
   * Commit the record of commands starting before they start (the server,
   * whose tasks outlive it: its next start must not take a started attempt
   * for one still preparing). Other writes may stay batched: what they say
   * is found again at a resume (the keepers record how each task ended).
   */
  durableStarts?: boolean;
  /** Retries allowed per task (OSMO's max_retry_per_task; default 0). */
  maxRetries: number;
  poolExitActions?: readonly ExitActionRule[];
  /** Grace between the polite signal and the kill when stopping a task. */
  stopGraceMs?: number;
  /** Head start of a group's lead over its siblings (default LEAD_HEAD_START_MS; 0: all at once). */
  leadHeadStartMs?: number;
  clock?: Clock;
  onEvent?: (event: EngineEvent) => void;
  /**
   * A restart: groups (by index) that completed in the run it restarts. They
   * are not run again; their tasks' outputs are that run's.
   */
  reused?: ReadonlyMap<number, { from: string; tasks: ReadonlyArray<{ outputDir: string; exitCode: number | null }> }>;
  /**
   * Go on with a run another process was driving (see resume.ts): running
   * attempts are re-attached through the runtime, the rest scheduled as usual.
   * With `reused` too (a restart resumed), those groups' outputs are found there.
   */
  resume?: ResumedRun;
}

/** A timeout as the reasons say it (`90s`). */
function seconds(ms: number | undefined): string {
  return ms === undefined ? "?" : `${ms / 1000}s`;
}

/** How much earlier than its siblings a lead's command starts (within the 100 ms start window). */
export const LEAD_HEAD_START_MS = 30;

/** A member whose sandbox waits for the group's release: a new attempt's, or one restarted in place (`inPlace`). */
interface ReadyMember {
  t: number;
  member: PreparedMember;
  retryId: number;
  inPlace?: boolean;
}

export interface RunResult {
  status: WorkflowStatus;
}

export class WorkflowRun implements PoolMember {
  private readonly plan: CompiledWorkflow;
  private readonly clock: Clock;
  private readonly groups: GroupState[];
  private readonly tasks: TaskState[][];
  private readonly used: Capacity = { cpu: 0, gpu: 0, memoryBytes: 0 };
  /** The GPUs of this run's capacity, or of the pool it shares. */
  private readonly gpuDevices: GpuDevices;
  private activeTasks = 0;
  private timer: unknown;
  private ticking = false;
  private tickAgain = false;
  private tickRequested = false;
  private canceled = false;
  private finished = false;
  /** Members whose RUNNING records wait for their commit before they are released (durableStarts). */
  private readonly toRelease: PreparedMember[] = [];
  private readonly state: RunState;
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
    this.gpuDevices = options.pool?.gpuDevices ?? new GpuDevices(options.capacity.gpu);
    const { runId, recorder } = options;
    const hostName = options.runtime.hostName?.bind(options.runtime);
    this.view = { runId, recorder, plan: this.plan, groups: this.groups, tasks: this.tasks, gpuDevices: this.gpuDevices, hostName };
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
    checkImagesAtStart(this.plan, statuses, this.options.runtime, (unavailable) => this.imageUnavailable(unavailable));
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
      if (this.tasks[g]![t]!.status === "WAITING") this.state.setTask(g, t, "COMPLETED", reason, { exitCode: task.exitCode });
    });
    this.state.setGroup(g, "COMPLETED", reason);
  }

  /**
   * Resumes a run from its recorded state. Groups that were running keep
   * their capacity and addresses and their running attempts are re-attached;
   * groups still preparing start again in a new attempt (no command of
   * theirs had started); waiting and scheduling groups go on as usual.
   */
  private resume(resumed: ResumedRun): Promise<RunResult> {
    this.state.restore(resumed);
    const now = this.clock.now();
    const preparing: number[] = [];
    this.plan.groups.forEach((group, g) => {
      this.enterWaiting(g);
      const recorded = resumed.groups[g]!;
      const reused = this.options.reused?.get(g);
      group.tasks.forEach((task, t) => {
        const state = this.tasks[g]![t]!;
        state.outputDir = reused?.tasks[t]?.outputDir ?? join(this.options.dataDir, "outputs", task.name, String(state.retryId));
      });
      const status = this.groups[g]!.status;
      // Attempts that ended as far as the record goes, but whose processes the last troupe may still have been stopping.
      const ended = group.tasks.map((_, t) => t).filter((t) => isFinal(this.tasks[g]![t]!.status ?? "WAITING"));
      if (status !== "WAITING" && status !== "SCHEDULING") for (const t of ended) void this.stopLeftover(g, t, recorded);
      if (status === "SCHEDULING") this.groups[g]!.queuedAt = now;
      else if (status === "INITIALIZING") preparing.push(g);
      else if (status === "RUNNING") this.reattachGroup(g, recorded);
    });
    // After every running group has taken back its GPUs: a new attempt must not be given one of those.
    for (const g of preparing) this.restartPreparing(g);
    this.tick();
    this.checkImages();
    return this.done;
  }

  /** A group whose sandboxes were being prepared when the last process ended: a new attempt for each unfinished member. */
  private restartPreparing(g: number): void {
    const members = this.plan.groups[g]!.tasks.map((_, t) => t).filter((t) => !isFinal(this.tasks[g]![t]!.status ?? "WAITING"));
    this.reserve(g);
    for (const t of members) {
      this.state.setTask(g, t, "RESCHEDULED", "troupe restarted before the group's commands started", { endTime: this.clock.now() });
      this.newAttempt(g, t, "INITIALIZING", "new attempt: troupe restarted before the group's commands started");
    }
    void this.launchGroup(g, members);
  }

  private reattachGroup(g: number, recorded: ResumedRun["groups"][number]): void {
    const group = this.plan.groups[g] as CompiledGroup;
    const state = this.groups[g]!;
    this.reserve(g, recorded.gpus);
    state.runningAt = recorded.startTime ?? this.clock.now();
    state.addresses = Object.fromEntries(group.tasks.map((task, t) => [task.name, recorded.tasks[t]!.ip ?? ""]));
    const hosts = new Map(Object.entries(state.addresses).map(([name, address]) => [normalizeName(name), address]));
    group.tasks.forEach((_, t) => {
      const task = this.tasks[g]![t]!;
      if (task.status === "RUNNING") void this.reattach(g, t, hosts);
      else if (task.status === "RESCHEDULED") {
        // Between two attempts: the next one was never made.
        this.newAttempt(g, t, "INITIALIZING", "new attempt after troupe restarted");
        this.finishTask(
          g,
          t,
          "FAILED_SERVER_ERROR",
          "troupe restarted before this task's next attempt started",
          PlatformExitCode.SERVER_ERROR,
        );
      } else if (!isFinal(task.status ?? "WAITING"))
        this.finishTask(
          g,
          t,
          "FAILED_SERVER_ERROR",
          "troupe restarted before this attempt's command started",
          PlatformExitCode.SERVER_ERROR,
        );
    });
  }

  /** Ends whatever is left of an attempt recorded as ended (the run finishes only once it is gone). */
  private async stopLeftover(g: number, t: number, recorded: ResumedRun["groups"][number]): Promise<void> {
    const group = this.plan.groups[g] as CompiledGroup;
    const hosts = new Map(group.tasks.map((task, i) => [normalizeName(task.name), recorded.tasks[i]!.ip ?? ""]));
    this.groups[g]!.live++;
    try {
      const member = await this.options.runtime
        .reattach(attemptLaunch(this.view, g, t, this.tasks[g]![t]!.retryId, hosts))
        .catch(() => undefined);
      if (member) await member.stop(0);
    } catch {
      // Nothing to stop (an input that cannot be resolved: the attempt never started).
    } finally {
      this.groups[g]!.live--;
      this.requestTick();
    }
  }

  private async reattach(g: number, t: number, hosts: Map<string, string>): Promise<void> {
    const state = this.tasks[g]![t]!;
    const retryId = state.retryId;
    this.groups[g]!.live++;
    let member: PreparedMember | undefined;
    let why = "troupe restarted and the attempt could not be found";
    try {
      member = await this.options.runtime.reattach(attemptLaunch(this.view, g, t, retryId, hosts));
    } catch (error) {
      why = `troupe restarted and could not re-attach the attempt: ${(error as Error).message}`;
    }
    if (!member) {
      this.groups[g]!.live--;
      if (state.retryId === retryId && !isFinal(state.status ?? "WAITING"))
        this.finishTask(g, t, "FAILED_SERVER_ERROR", `${why}: how it ended is unknown`, PlatformExitCode.SERVER_ERROR);
      this.releaseIfDone(g);
      this.requestTick();
      return;
    }
    state.member = member;
    void member.exited.then((info) => this.onExit(g, t, retryId, info));
    // The group may have ended meanwhile (a sibling's re-attach found nothing).
    if (state.retryId !== retryId || isFinal(state.status ?? "WAITING")) void member.stop(this.grace());
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
        const capacity = pool?.capacity ?? this.options.capacity;
        const counted = pool?.used ?? this.used;
        // GPUs held for resumed runs not started yet (GpuDevices.hold) are not free either.
        const used = { ...counted, gpu: Math.max(counted.gpu, capacity.gpu - this.gpuDevices.available) };
        const decision = this.canceled
          ? { actions: [], wakeAt: undefined }
          : schedule({
              plan: this.plan,
              groups: this.groups,
              capacity,
              used,
              activeTasks: pool?.activeTasks ?? this.activeTasks,
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
          `waited longer than the queue timeout (${seconds(this.plan.timeouts.queueMs)}) for resources`,
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
        this.state.setGroup(g, "INITIALIZING", "admitted: resources reserved");
        group.tasks.forEach((_, t) => this.state.setTask(g, t, "INITIALIZING", "preparing its sandbox"));
        void this.launchGroup(
          g,
          group.tasks.map((_, t) => t),
        );
        break;
    }
  }

  /** Takes group g's capacity; `had`: the GPUs its members had before troupe restarted. */
  private reserve(g: number, had?: number[][] | null): void {
    const group = this.plan.groups[g] as CompiledGroup;
    this.used.cpu += group.demand.cpu;
    this.used.gpu += group.demand.gpu;
    this.used.memoryBytes += group.demand.memoryBytes;
    this.activeTasks += group.tasks.length;
    this.options.pool?.reserve(group.demand, group.tasks.length);
    this.groups[g]!.holdsCapacity = true;
    if (group.demand.gpu > 0) {
      // Recorded, so that a server that resumes the run gives its running members' GPUs to no one else.
      const gpus = (had && this.gpuDevices.takeThese(had)) ?? this.gpuDevices.take(group.tasks.map((task) => task.resources.gpu));
      this.groups[g]!.gpus = gpus;
      this.options.recorder.updateGroup(this.options.runId, g, { gpus });
    }
  }

  /** Moves a task on to its next attempt, in `status`. */
  private newAttempt(g: number, t: number, status: TaskStatus, reason: string): void {
    const state = this.tasks[g]![t]!;
    state.retryId += 1;
    state.status = null;
    state.exitCode = null;
    state.outputDir = join(this.options.dataDir, "outputs", this.plan.groups[g]!.tasks[t]!.name, String(state.retryId));
    const ended = isFinal(status) ? { endTime: this.clock.now() } : { endTime: null };
    this.state.setTask(g, t, status, reason, { retryId: state.retryId, exitCode: null, startTime: null, ...ended });
  }

  /** Once a group has ended and nothing of it is alive, its capacity and addresses return to the pool. */
  private releaseIfDone(g: number): void {
    const state = this.groups[g]!;
    if (!isFinal(state.status) || state.live > 0 || !state.holdsCapacity) return;
    const group = this.plan.groups[g] as CompiledGroup;
    state.holdsCapacity = false;
    this.used.cpu -= group.demand.cpu;
    this.used.gpu -= group.demand.gpu;
    this.used.memoryBytes -= group.demand.memoryBytes;
    this.activeTasks -= group.tasks.length;
    if (state.gpus) {
      this.gpuDevices.give(state.gpus);
      this.options.recorder.updateGroup(this.options.runId, g, { gpus: null });
    }
    state.gpus = undefined;
    this.options.pool?.release(group.demand, group.tasks.length, this);
    if (state.addresses) this.options.runtime.releaseAddresses(Object.values(state.addresses));
    state.addresses = undefined;
    this.requestTick();
  }

  // ---- launching --------------------------------------------------------

  /**
   * Bring up sandboxes for `members` of group g (all, or the ones rescheduled), then release them together,
   * with the members being `restarted` in place.
   */
  private async launchGroup(g: number, members: number[], restarted: Array<Promise<ReadyMember | undefined>> = []): Promise<void> {
    const group = this.plan.groups[g] as CompiledGroup;
    const state = this.groups[g]!;
    state.live += members.length;
    try {
      state.addresses ??= await this.options.runtime.addresses(group.tasks.map((t) => t.name));
    } catch (error) {
      state.live -= members.length;
      this.endGroup(g, "FAILED_BACKEND_ERROR", `no addresses for the group: ${(error as Error).message}`, "FAILED_BACKEND_ERROR", 0);
      this.releaseIfDone(g);
      return;
    }
    const hosts = new Map(Object.entries(state.addresses).map(([name, address]) => [normalizeName(name), address]));
    const prepared = [...members.map((t) => this.prepareMember(g, t, hosts)), ...restarted];
    if (!group.barrier) {
      prepared.forEach((p) => void p.then((m) => m && this.release(g, [m])));
      return;
    }
    const ready = (await Promise.all(prepared)).filter((m): m is ReadyMember => m !== undefined);
    this.release(g, ready);
  }

  private async prepareMember(g: number, t: number, hosts: Map<string, string>): Promise<ReadyMember | undefined> {
    const group = this.plan.groups[g] as CompiledGroup;
    const task = group.tasks[t]!;
    const state = this.tasks[g]![t]!;
    const retryId = state.retryId;
    state.outputDir = join(this.options.dataDir, "outputs", task.name, String(retryId));
    const addresses = this.groups[g]!.addresses ?? {};
    this.options.recorder.updateTask(this.options.runId, g, t, { ip: addresses[task.name] ?? null });
    let member: PreparedMember;
    try {
      const launch = attemptLaunch(this.view, g, t, retryId, hosts);
      member = await this.options.runtime.prepare(launch);
    } catch (error) {
      this.groups[g]!.live--;
      if (state.retryId === retryId && !isFinal(state.status ?? "WAITING")) {
        const status = error instanceof TaskStartError ? error.status : "FAILED_START_ERROR";
        const code = status === "FAILED_BACKEND_ERROR" ? PlatformExitCode.BACKEND_ERROR : PlatformExitCode.START_ERROR;
        this.finishTask(g, t, status, `could not start: ${(error as Error).message}`, code);
      }
      this.releaseIfDone(g);
      return undefined;
    }
    state.member = member;
    void member.exited.then((info) => this.onExit(g, t, retryId, info));
    // The group may have ended while this sandbox came up (lead failed, cancel, timeout).
    if (state.retryId !== retryId || isFinal(state.status ?? "WAITING")) {
      void member.stop(0);
      return undefined;
    }
    return { t, member, retryId };
  }

  private release(g: number, ready: ReadyMember[]): void {
    const group = this.plan.groups[g] as CompiledGroup;
    const stillWaiting = (m: ReadyMember) => {
      const state = this.tasks[g]![m.t]!;
      if (m.inPlace) return state.retryId === m.retryId && state.status === "RUNNING" && state.member === m.member;
      return state.retryId === m.retryId && state.status === "INITIALIZING";
    };
    const live = ready.filter(stillWaiting);
    if (live.length === 0) return;
    if (this.groups[g]!.status === "INITIALIZING") {
      this.groups[g]!.runningAt = this.clock.now();
      this.state.setGroup(g, "RUNNING", "members started");
    }
    // The lead goes first by a few milliseconds, well inside the group's start
    // window: in client/server groups the lead is usually the server, and its
    // clients should find it listening.
    const headStart = this.options.leadHeadStartMs ?? LEAD_HEAD_START_MS;
    const lead = live.find((m) => group.tasks[m.t]!.lead);
    if (lead && live.length > 1 && headStart > 0) {
      this.startCommands(g, [lead]);
      const others = live.filter((m) => m !== lead);
      this.clock.setTimer(() => this.startCommands(g, others.filter(stillWaiting)), headStart);
    } else {
      this.startCommands(g, live);
    }
  }

  private startCommands(g: number, members: ReadyMember[]): void {
    const now = this.clock.now();
    for (const { t, inPlace } of members)
      if (inPlace) this.state.setTask(g, t, "RUNNING", "command restarted in place");
      else this.state.setTask(g, t, "RUNNING", "command started", { startTime: now });
    if (this.options.durableStarts) this.releaseDurably(members.map((m) => m.member));
    else for (const { member } of members) member.release();
    this.requestTick();
  }

  /**
   * Kept tasks: on disk before the commands start, so that a troupe dying between the two leaves a RUNNING
   * attempt that never started (its keeper stops it and says so), never a started one recorded as preparing.
   * The groups released in one burst share one commit (a commit per group cost 0.3 ms each).
   */
  private releaseDurably(members: PreparedMember[]): void {
    if (this.toRelease.length === 0)
      queueMicrotask(() => {
        const batch = this.toRelease.splice(0);
        this.options.recorder.flush?.();
        for (const member of batch) member.release();
      });
    this.toRelease.push(...members);
  }

  // ---- endings ----------------------------------------------------------

  private onExit(g: number, t: number, retryId: number, info: ExitInfo): void {
    const state = this.tasks[g]![t]!;
    this.groups[g]!.live--;
    if (state.retryId === retryId) {
      state.member = undefined;
      if (!isFinal(state.status ?? "WAITING")) this.decideExit(g, t, info);
      else if (state.exitCode === null) this.state.recordExitCode(g, t, info.code);
    }
    this.releaseIfDone(g);
    this.requestTick();
  }

  private decideExit(g: number, t: number, info: ExitInfo): void {
    const task = this.plan.groups[g]!.tasks[t]!;
    const state = this.tasks[g]![t]!;
    if (info.lost !== undefined) {
      this.finishTask(g, t, "FAILED_SERVER_ERROR", `how it ended is unknown: ${info.lost}`, PlatformExitCode.SERVER_ERROR);
      return;
    }
    if (info.startError !== undefined) {
      this.finishTask(g, t, "FAILED_START_ERROR", info.startError, PlatformExitCode.START_ERROR);
      return;
    }
    const action = exitActionFor(info.code, task.exitActions, this.options.poolExitActions);
    const exited = `exited with ${info.code}${info.reason ? ` (${info.reason})` : ""}`;
    if (action === "COMPLETE") this.finishTask(g, t, "COMPLETED", exited, info.code);
    else if (action === "FAIL") this.finishTask(g, t, "FAILED", exited, info.code);
    else if (state.retryId < this.options.maxRetries) this.reschedule(g, t, info.code);
    else
      this.finishTask(
        g,
        t,
        "FAILED",
        `exited with ${info.code}: RESCHEDULE, but no retries are left (limit ${this.options.maxRetries})`,
        info.code,
      );
  }

  /**
   * RESCHEDULE: a new attempt in a fresh sandbox; the lead (or any member, without ignoreNonleadStatus) restarts
   * its siblings, in place where their runtime can (restart-in-place.ts).
   */
  private reschedule(g: number, t: number, code: number): void {
    const group = this.plan.groups[g] as CompiledGroup;
    const cause = group.tasks[t]!.name;
    const views = this.tasks[g]!.map((task) => ({ status: task.status, restartsInPlace: task.member?.restart !== undefined }));
    const { fresh: members, inPlace } = planReschedule(group, t, views);
    const restarted = inPlace.map((i) => this.restartInPlace(g, i, cause));
    const stops: Array<Promise<void>> = [];
    for (const i of members) {
      const state = this.tasks[g]![i]!;
      const reason =
        i === t
          ? `exited with ${code}: RESCHEDULE (retry ${state.retryId + 1} of ${this.options.maxRetries})`
          : `restarted with ${cause} in a fresh sandbox`;
      if (i === t) this.state.recordExitCode(g, i, code);
      this.state.setTask(g, i, "RESCHEDULED", reason, { endTime: this.clock.now() });
      if (state.member) stops.push(state.member.stop(this.grace()));
      state.member = undefined;
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
      void this.launchGroup(g, members, restarted);
    });
  }

  /** A sibling's command stopped and kept for the group's next release, in the same attempt and sandbox (OSMO's restart). */
  private restartInPlace(g: number, i: number, cause: string): Promise<ReadyMember | undefined> {
    const { member, retryId } = this.tasks[g]![i]!;
    this.state.setTask(g, i, "RUNNING", `${cause} was rescheduled: command stopped, to restart in place (its sandbox and files kept)`);
    // False: the command ended first, and its end is the attempt's (onExit).
    return member!.restart!(this.grace()).then((waiting) => (waiting ? { t: i, member: member!, retryId, inPlace: true } : undefined));
  }

  private finishTask(g: number, t: number, status: TaskStatus, reason: string, exitCode: number | null): void {
    const group = this.plan.groups[g] as CompiledGroup;
    this.state.setTask(g, t, status, reason, { exitCode, endTime: this.clock.now() });
    this.tasks[g]![t]!.exitCode = exitCode;
    if (isFinal(this.groups[g]!.status)) return;
    const task = group.tasks[t]!;
    if (task.lead) {
      const outcome: TaskStatus = status === "COMPLETED" ? "COMPLETED" : "FAILED";
      this.endGroup(
        g,
        status as GroupStatus,
        `lead task ${task.name} ${status === "COMPLETED" ? "completed" : "failed"}`,
        outcome,
        this.grace(),
        null,
        "lead task finished",
      );
    } else if (isFailure(status) && !group.ignoreNonleadStatus) {
      this.endGroup(
        g,
        "FAILED",
        `task ${task.name} failed (ignoreNonleadStatus is false)`,
        "FAILED",
        this.grace(),
        null,
        `group failed: ${task.name} failed`,
      );
    }
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
    for (const task of this.tasks[g]!) if (task.member) void task.member.stop(graceMs);
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
