/**
 * The statuses of one run's workflow, groups and tasks, and the one way to
 * change them: every change is checked against the transition table,
 * written to the store and announced, with its reason and time.
 */
import type { CompiledWorkflow } from "../plan/index.js";
import type { GroupHandle, MemberOutcome, Placement } from "../port/index.js";
import type { Clock } from "./clock.js";
import type { EngineEvent, RunRecorder } from "./recorder.js";
import type { ResumedRun } from "./resume.js";
import { SchedulingFocus } from "./scheduling-focus.js";
import { checkTransition, type GroupStatus, type TaskStatus, type WorkflowStatus } from "./statuses.js";

/** A group's members' placements, by task name as written. */
export type Placements = Record<string, Placement>;

/** A task attempt the pool knows of: how to reach it. */
export interface LiveAttempt {
  key: string;
  handle: GroupHandle;
  /** Its sandbox is up (ready, or found again by a re-attach): a stop reaches it. */
  up: boolean;
  /**
   * Asked to be placed and not placed yet (a cluster's job pending): a stop reaches it at once, and the
   * pool ends it (a pending Slurm job is cancelled), as the port allows for any member.
   */
  placing?: boolean;
  /**
   * Asked to prepare and not up yet: a stop reaches it at once too, so that a cancel does not wait for a
   * sandbox that may never come up (a `podman run` that does not return).
   */
  preparing?: boolean;
  /** That stop has reached its handle (not only been asked for: `cameUp` passes it on then). */
  stopSent?: boolean;
  /** The grace of the stop asked for it, if one was (group-launch.ts `stopAttempt`). */
  stopGrace?: number;
  /** Its `url:` transfers (attempt-data.ts), aborted when it is stopped. */
  transfers?: AbortController;
  /** How it ends whatever the runtime reports: its inputs could not be had (it was stopped for that). */
  dataFailure?: MemberOutcome;
}

export interface TaskState {
  status: TaskStatus | null;
  retryId: number;
  exitCode: number | null;
  outputDir: string;
  /** Where the pool has the current attempt, from its placement until its end. */
  attempt?: LiveAttempt;
  /** Why the cluster has not placed the current attempt, as last said (unplaced.ts). */
  unplaced?: string;
}

export interface GroupState {
  status: GroupStatus;
  queuedAt?: number;
  runningAt?: number;
  /** Where its members are, as the pool placed them (a new object at each change). */
  placements?: Placements;
  /** Admitted and SCHEDULING while a cluster places it (scheduler.ts GroupSnapshot.placing). */
  placing?: boolean;
  /** Capacity is held from admission until every member is gone. */
  holdsCapacity: boolean;
  /** The GPUs each member has while the group holds capacity (gpu-devices.ts). */
  gpus?: number[][];
  /** What its unfinished tasks became when it ended (for attempts begun after that). */
  endedAs?: { status: TaskStatus; reason: string };
  /** Attempts whose sandbox is being prepared or whose process is alive. */
  live: number;
  /** Why the cluster has not placed one of its members, as last said (unplaced.ts). */
  unplaced?: string;
}

export class RunState {
  private workflowStatus: WorkflowStatus = "PENDING";
  readonly groups: GroupState[];
  readonly tasks: TaskState[][];
  /** Which groups the next scheduling pass needs to look at, kept up to date by setGroup. */
  readonly focus: SchedulingFocus;

  constructor(
    private readonly runId: string,
    private readonly plan: CompiledWorkflow,
    private readonly recorder: RunRecorder,
    private readonly clock: Clock,
    private readonly onEvent?: (event: EngineEvent) => void,
  ) {
    this.groups = plan.groups.map(() => ({ status: "SUBMITTING", holdsCapacity: false, live: 0 }));
    this.tasks = plan.groups.map((g) => g.tasks.map(() => ({ status: "SUBMITTING", retryId: 0, exitCode: null, outputDir: "" })));
    this.focus = new SchedulingFocus(plan, (g) => this.groups[g]!.status);
  }

  /** A resumed run: the statuses as recorded, taken over (not recorded again), and a transition that says why. */
  restore(resumed: ResumedRun): void {
    resumed.groups.forEach((group, g) => {
      this.groups[g]!.status = group.status;
      group.tasks.forEach((task, t) =>
        Object.assign(this.tasks[g]![t]!, { status: task.status, retryId: task.retryId, exitCode: task.exitCode }),
      );
    });
    this.focus.rebuild();
    // A run whose start was never committed starts now (PENDING -> RUNNING, recorded), not "RUNNING -> RUNNING".
    if (resumed.status === "PENDING") return this.setRun("RUNNING", resumed.reason, { startTime: this.clock.now() });
    this.workflowStatus = "RUNNING";
    this.record({ kind: "run" }, "RUNNING", "RUNNING", resumed.reason);
  }

  recordExitCode(g: number, t: number, code: number): void {
    this.tasks[g]![t]!.exitCode = code;
    this.recorder.updateTask(this.runId, g, t, { exitCode: code });
  }

  setRun(to: WorkflowStatus, reason: string, extra: { startTime?: number; endTime?: number } = {}): void {
    const from = this.workflowStatus;
    checkTransition(`workflow ${this.runId}`, from, to);
    this.workflowStatus = to;
    this.recorder.updateRun(this.runId, { status: to, ...extra });
    this.record({ kind: "run" }, from, to, reason);
  }

  setGroup(g: number, to: GroupStatus, reason: string, extra: { endTime?: number; reusedFrom?: string } = {}): void {
    const state = this.groups[g]!;
    const from = state.status;
    const name = this.plan.groups[g]!.name;
    checkTransition(`group ${name}`, from, to);
    state.status = to;
    this.focus.changed(g, from, to);
    const startTime = to === "RUNNING" ? { startTime: this.clock.now() } : {};
    this.recorder.updateGroup(this.runId, g, { status: to, ...startTime, ...extra });
    this.record({ kind: "group", group: g }, from, to, reason, name);
  }

  setTask(
    g: number,
    t: number,
    to: TaskStatus,
    reason: string,
    extra: { startTime?: number | null; endTime?: number | null; exitCode?: number | null; retryId?: number; reusedFrom?: string } = {},
  ): void {
    const state = this.tasks[g]![t]!;
    const from = state.status;
    const name = this.plan.groups[g]!.tasks[t]!.name;
    checkTransition(`task ${name} (retry ${state.retryId})`, from, to);
    state.status = to;
    this.recorder.updateTask(this.runId, g, t, { status: to, reason, ...extra });
    this.record({ kind: "task", group: g, task: t, retryId: state.retryId }, from, to, reason, this.plan.groups[g]!.name, name);
  }

  /**
   * Something that happened to task t's attempt without changing its status (its data moved): an event
   * (a transition from its status to the same), for `troupe events` and live views.
   */
  noteTask(g: number, t: number, reason: string): void {
    const state = this.tasks[g]![t]!;
    const name = this.plan.groups[g]!.tasks[t]!.name;
    this.record(
      { kind: "task", group: g, task: t, retryId: state.retryId },
      state.status,
      state.status ?? "WAITING",
      reason,
      this.plan.groups[g]!.name,
      name,
    );
  }

  private record(
    subject: { kind: "run" } | { kind: "group"; group: number } | { kind: "task"; group: number; task: number; retryId: number },
    from: string | null,
    to: string,
    reason: string,
    groupName?: string,
    taskName?: string,
  ): void {
    const time = this.clock.now();
    this.recorder.recordTransition(this.runId, { subject, from, to, reason, time });
    this.onEvent?.({
      kind: subject.kind,
      group: groupName,
      task: taskName,
      retryId: subject.kind === "task" ? subject.retryId : undefined,
      from,
      to,
      reason,
      time,
    });
  }
}
