/**
 * Launching groups through the port: a group's handle (opened once, its
 * durable id recorded), its members placed, their launches built once every
 * member's placement is known (`{{host:X}}` resolves late), prepared, and
 * released together through the barrier, the lead a few milliseconds first.
 * The runtime's events arrive on the group's channel as promises per attempt;
 * every end, however it comes, goes to the run once (`LaunchSite.onExit`).
 */
import type { CompiledGroup } from "../plan/index.js";
import type { DataPlane, GroupHandle, MemberOutcome, RunSession, StartTimes, TaskMount, UrlTransfer } from "../port/index.js";
import { afterCommand, attemptTransfers, movesData, prepareInputs, stageData } from "./attempt-data.js";
import { CheckpointUploads } from "./checkpoints.js";
import { attemptKey, attemptLaunch, placementMounts, runSecrets, type RunView } from "./attempt-launch.js";
import type { Clock } from "./clock.js";
import type { Log } from "../util/log.js";
import { AttemptEvents, GroupChannel } from "./group-channel.js";
import { copyLog } from "./log-copy.js";
import { cameUp, readyMember, stopAttempt, type ReadyMember } from "./attempt-ready.js";
import type { LiveAttempt, RunState } from "./run-state.js";
import { RuntimeExitCode, isFinal, type TaskStatus } from "./statuses.js";
import { armStartDeadline } from "./start-deadline.js";
import { noteUnplaced } from "./unplaced.js";

/** How much earlier than its siblings a lead's command starts (within the 100 ms start window). */
export const LEAD_HEAD_START_MS = 30;

export { stopAttempt, type ReadyMember } from "./attempt-ready.js";

/** What the launcher needs of its run. */
export interface LaunchSite {
  readonly runId: string;
  readonly state: RunState;
  readonly view: RunView;
  readonly clock: Clock;
  readonly session: RunSession;
  /** Who places groups (PoolCapabilities.placement). */
  readonly placement: "engine" | "cluster";
  /** The runtime makes a member's sandbox as it places it (PoolCapabilities.sandboxAtPlacement). */
  readonly sandboxAtPlacement: boolean;
  /** The runtime writes each attempt's log file itself; otherwise it is copied from the handle's stream. */
  readonly localLogs: boolean;
  readonly durableStarts: boolean;
  readonly leadHeadStartMs: number;
  /** How long a member's sandbox may take to come up (start-deadline.ts; 0: no limit). */
  readonly startTimeoutMs: number;
  grace(): number;
  /** Where attempt `retryId` of task t writes `{{output}}`. */
  outputDirOf(g: number, t: number, retryId: number): string;
  /** Attempt `retryId` of task t ended; `started`: its sandbox had come up. */
  onExit(g: number, t: number, retryId: number, outcome: MemberOutcome, started: boolean): void;
  finishTask(g: number, t: number, status: TaskStatus, reason: string, exitCode: number | null): void;
  requestTick(): void;
  /** The run's log. */
  readonly log: Log;
  /** Moves `url:` inputs and outputs (absent: tasks that have them cannot start). */
  readonly data: DataPlane | undefined;
  /** The copy of an attempt's log failed (its output is incomplete); said, not fatal. */
  logLost(g: number, t: number, error: Error): void;
}

interface OpenGroup {
  handle: GroupHandle;
  channel: GroupChannel;
}

export class GroupLauncher {
  private readonly open = new Map<number, OpenGroup>();
  /** What attempts that have any upload: their `url:` outputs when their command ends, their checkpoints meanwhile. */
  private readonly uploads = new WeakMap<LiveAttempt, { uploads: UrlTransfer[]; checkpoints: CheckpointUploads | undefined }>();
  /** Releases whose RUNNING records wait for their commit (durableStarts). */
  private readonly toRelease: Array<{ g: number; members: ReadyMember[] }> = [];

  constructor(private readonly site: LaunchSite) {}

  /** Grace between the polite signal and the kill when stopping a member. */
  grace(): number {
    return this.site.grace();
  }

  /** Group g's handle, opened on first use (or, with `id`, found again by the id a previous process recorded). */
  handleOf(g: number, id?: string): OpenGroup {
    let group = this.open.get(g);
    if (!group) {
      const compiled = this.site.view.plan.groups[g]!;
      const channel = new GroupChannel();
      const handle = this.site.session.openGroup({ name: compiled.name, members: compiled.tasks.map((t) => t.name) }, channel, id);
      group = { handle, channel };
      this.open.set(g, group);
      if (handle.id !== id) this.site.view.recorder.updateGroup(this.site.runId, g, { handle: handle.id });
    }
    return group;
  }

  /** Gives back what group g holds (its addresses, an allocation): nothing of it runs any more. */
  close(g: number): void {
    const group = this.open.get(g);
    if (!group) return;
    this.open.delete(g);
    void group.handle.close();
  }

  /** Task t's attempt: its events reach the run. */
  private watch(g: number, t: number, retryId: number): { events: AttemptEvents; attempt: LiveAttempt } {
    const { handle, channel } = this.handleOf(g);
    const key = this.keyOf(g, t, retryId);
    const events = channel.expect(key);
    const attempt: LiveAttempt = { key, handle, up: false };
    void events.exited.then((outcome) => {
      const ended = attempt.dataFailure ?? outcome;
      const uploads = this.uploads.get(attempt);
      if (!uploads) return this.site.onExit(g, t, retryId, ended, events.wasReady);
      this.uploads.delete(attempt);
      // Its last checkpoints and outputs go up before its end is decided (still RUNNING meanwhile), unless it was stopped or its task ended.
      const task = this.site.state.tasks[g]![t]!;
      const current = task.retryId === retryId && !isFinal(task.status ?? "WAITING");
      const uploaded = current
        ? afterCommand(this.site, g, t, attempt, uploads, ended)
        : Promise.resolve(uploads.checkpoints?.finish(false)).then(() => ended);
      void uploaded.then((final) => this.site.onExit(g, t, retryId, final, events.wasReady));
    });
    this.site.state.tasks[g]![t]!.attempt = attempt;
    return { events, attempt };
  }

  private keyOf(g: number, t: number, retryId: number): string {
    const group = this.site.view.plan.groups[g]!;
    return attemptKey(group.name, group.tasks[t]!.name, retryId);
  }

  /**
   * Places, prepares and releases `members` of group g (all, or the ones
   * rescheduled), with the members `restarted` in place.
   */
  async launch(g: number, members: number[], restarted: Array<Promise<ReadyMember | undefined>> = []): Promise<void> {
    const group = this.site.view.plan.groups[g] as CompiledGroup;
    const state = this.site.state;
    state.groups[g]!.live += members.length;
    const watched = members.map((t) => ({ t, retryId: state.tasks[g]![t]!.retryId, ...this.watch(g, t, state.tasks[g]![t]!.retryId) }));
    const { handle } = this.handleOf(g);
    for (const { t, retryId, attempt, events } of watched) {
      attempt.placing = true;
      events.onUnplaced = (reason) => noteUnplaced(state, group, g, t, retryId, reason);
      void events.placed.then(() => (attempt.placing = false));
    }
    handle.place(
      watched.map(({ t, retryId, attempt }) => {
        const { cpu, gpu, memoryBytes, storageBytes, platform, nodesExcluded } = group.tasks[t]!.resources;
        const { name, image, hostNetwork } = group.tasks[t]!;
        const mounts = this.mountsAtPlacement(g, t, retryId);
        const resources = { cpu, gpu, memoryBytes, storageBytes };
        return { key: attempt.key, taskName: name, retryId, resources, image, hostNetwork, mounts, platform, nodesExcluded };
      }),
    );
    const placements = await Promise.all(watched.map((w) => w.events.placed));
    // A new object: launches are built once per placements object (attempt-launch.ts).
    const placed = { ...state.groups[g]!.placements };
    watched.forEach(({ t }, i) => {
      const placement = placements[i];
      if (!placement) return;
      placed[group.tasks[t]!.name] = placement;
      this.site.view.recorder.updateTask(this.site.runId, g, t, { ip: placement.address });
    });
    state.groups[g]!.placements = placed;
    if (this.site.placement === "cluster") this.placedByCluster(g);
    // A group of one has no sibling to wait for at its barrier: released as soon as it is ready.
    const alone = group.tasks.length === 1 && watched.length === 1 && restarted.length === 0;
    const prepared = [
      ...watched.map((w, i) => (placements[i] ? this.prepare(g, w.t, w.retryId, w.attempt, w.events, alone) : undefined)),
      ...restarted,
    ];
    if (!group.barrier) {
      prepared.forEach((p) => void p?.then((m) => m && this.release(g, [m])));
      return;
    }
    const ready = (await Promise.all(prepared)).filter((m): m is ReadyMember => m !== undefined);
    this.release(g, ready);
  }

  /**
   * What a pool that makes a member's sandbox as it places it (a pod) and shows it mounts must give it then
   * (MemberRef.mounts). Undefined elsewhere, and when they cannot be known yet: the launch then says
   * what it needs, and the pool refuses it if the sandbox lacks it.
   */
  private mountsAtPlacement(g: number, t: number, retryId: number): TaskMount[] | undefined {
    if (!this.site.sandboxAtPlacement || !this.site.view.taskView.mounts) return undefined;
    try {
      return placementMounts(this.site.view, g, t, retryId, this.site.outputDirOf(g, t, retryId));
    } catch {
      return undefined;
    }
  }

  /** A cluster placed the whole group: its sandboxes come up now. */
  private placedByCluster(g: number): void {
    const state = this.site.state;
    if (state.groups[g]!.status !== "SCHEDULING") return;
    state.groups[g]!.placing = false;
    state.setGroup(g, "INITIALIZING", "placed by the cluster");
    state.tasks[g]!.forEach((task, t) => {
      if (task.status === "SCHEDULING") state.setTask(g, t, "INITIALIZING", "preparing its sandbox");
    });
  }

  /**
   * Brings up attempt `retryId` of task t; its ReadyMember once it waits for the release. `alone`: a group of
   * one, released as soon as it is ready (below).
   */
  private async prepare(
    g: number,
    t: number,
    retryId: number,
    attempt: LiveAttempt,
    events: AttemptEvents,
    alone: boolean,
  ): Promise<ReadyMember | undefined> {
    const task = this.site.state.tasks[g]![t]!;
    task.outputDir = this.site.outputDirOf(g, t, retryId);
    let launch;
    try {
      launch = attemptLaunch(this.site.view, g, t, retryId, this.site.state.groups[g]!.placements ?? {});
    } catch (error) {
      // Nothing was started for it: its end is this (the runtime frees its place; what it reports of that comes second).
      events.end({ kind: "start-failed", message: (error as Error).message });
      void attempt.handle.stop(attempt.key, 0);
      return undefined;
    }
    let staged: Promise<boolean> | undefined;
    const movesItsData = movesData(this.site.view, this.site.view.plan.groups[g]!.tasks[t]!);
    if (movesItsData) {
      const transfers = attemptTransfers(this.site.view, g, t, launch);
      try {
        await prepareInputs(this.site, transfers);
      } catch (error) {
        events.end({ kind: "start-failed", message: (error as Error).message });
        void attempt.handle.stop(attempt.key, 0);
        return undefined;
      }
      const checkpoints =
        transfers.checkpoints.length > 0 && this.site.data
          ? new CheckpointUploads(
              { clock: this.site.clock, data: this.site.data, note: (message) => this.site.state.noteTask(g, t, message) },
              transfers.checkpoints,
              (attempt.transfers ??= new AbortController()).signal,
            )
          : undefined;
      if (transfers.uploads.length > 0 || checkpoints) this.uploads.set(attempt, { uploads: transfers.uploads, checkpoints });
      // Downloads (and the outputs' access check) while the sandbox comes up; the barrier waits for both.
      if (transfers.downloads.length + transfers.uploads.length + transfers.checkpoints.length > 0)
        staged = stageData(this.site, g, t, attempt, transfers);
    }
    // Nothing to wait for once it is up (no sibling, no data, no durable record first): the runtime may start the
    // command as its sandbox comes up, one step instead of two. Recorded RUNNING as it is reported ready, before
    // any end of it can be seen (onReady is told synchronously).
    const releaseWhenReady = alone && !movesItsData && !this.site.durableStarts;
    if (releaseWhenReady)
      events.onReady = () => {
        const member = readyMember(this.site.state, g, t, retryId, attempt);
        if (member) this.release(g, [member]);
      };
    attempt.handle.prepare(launch, releaseWhenReady ? { releaseWhenReady } : undefined);
    attempt.preparing = true;
    void events.ready.then(() => (attempt.preparing = false));
    armStartDeadline(this.site.clock, this.site.startTimeoutMs, attempt, events);
    if (staged && !(await staged) && attempt.dataFailure) void stopAttempt(attempt, 0);
    if (!(await events.ready)) return undefined;
    return releaseWhenReady ? undefined : readyMember(this.site.state, g, t, retryId, attempt);
  }

  /** OSMO's restart in place of sibling i (a member was rescheduled): same attempt and sandbox, released again with the group. */
  restartInPlace(g: number, i: number, cause: string): Promise<ReadyMember | undefined> {
    const { attempt, retryId } = this.site.state.tasks[g]![i]!;
    this.site.state.setTask(g, i, "RUNNING", `${cause} was rescheduled: command stopped, to restart in place (its sandbox and files kept)`);
    // False: the command ended first, and its end is the attempt's (onExit).
    return attempt!.handle
      .restart(attempt!.key, this.site.grace())
      .then((waiting) => (waiting ? { t: i, retryId, attempt: attempt!, inPlace: true } : undefined));
  }

  private release(g: number, ready: ReadyMember[]): void {
    const group = this.site.view.plan.groups[g] as CompiledGroup;
    const state = this.site.state;
    const stillWaiting = (m: ReadyMember) => {
      const task = state.tasks[g]![m.t]!;
      if (m.inPlace) return task.retryId === m.retryId && task.status === "RUNNING" && task.attempt === m.attempt;
      return task.retryId === m.retryId && task.status === "INITIALIZING";
    };
    const live = ready.filter(stillWaiting);
    if (live.length === 0) return;
    if (state.groups[g]!.status === "INITIALIZING") {
      state.groups[g]!.runningAt = this.site.clock.now();
      state.setGroup(g, "RUNNING", "members started");
    }
    // The lead goes first by a few milliseconds, well inside the group's start
    // window: in client/server groups the lead is usually the server, and its
    // clients should find it listening.
    const headStart = this.site.leadHeadStartMs;
    const lead = live.find((m) => group.tasks[m.t]!.lead);
    if (lead && live.length > 1 && headStart > 0) {
      this.startCommands(g, [lead]);
      const others = live.filter((m) => m !== lead);
      this.site.clock.setTimer(() => this.startCommands(g, others.filter(stillWaiting)), headStart);
    } else {
      this.startCommands(g, live);
    }
  }

  private startCommands(g: number, members: ReadyMember[]): void {
    if (members.length === 0) return;
    const now = this.site.clock.now();
    for (const { t, inPlace, attempt } of members)
      if (inPlace) this.site.state.setTask(g, t, "RUNNING", "command restarted in place");
      else {
        this.site.state.setTask(g, t, "RUNNING", "command started", { startTime: now });
        if (!this.site.localLogs) this.copyLog(g, t, attempt);
        this.uploads.get(attempt)?.checkpoints?.start();
      }
    if (this.site.durableStarts) this.releaseDurably(g, members);
    else this.releaseNow(g, members);
    this.site.requestTick();
  }

  /** The attempt's output, from the pool's stream into its log file. */
  private copyLog(g: number, t: number, attempt: LiveAttempt): void {
    const group = this.site.view.plan.groups[g]!;
    const retryId = this.site.state.tasks[g]![t]!.retryId;
    const path = this.site.view.recorder.logPath(this.site.runId, group.name, group.tasks[t]!.name, retryId);
    void copyLog(
      () => attempt.handle.logs(attempt.key),
      path,
      (error) => this.site.logLost(g, t, error),
      runSecrets(this.site.view.credentials),
    );
  }

  private releaseNow(g: number, members: ReadyMember[]): void {
    const handle = members[0]!.attempt.handle;
    handle.release(members.map((m) => m.attempt.key)).then(
      (times) => times && this.recordStarts(g, members, times),
      (error: Error) => this.releaseFailed(g, members, error),
    );
  }

  /** Where the runtime knows when each command started (on its node): the record's start times are those. */
  private recordStarts(g: number, members: ReadyMember[], times: StartTimes): void {
    const started = members.filter((m) => times.has(m.attempt.key) && this.site.state.tasks[g]![m.t]!.retryId === m.retryId);
    for (const m of started) this.site.view.recorder.updateTask(this.site.runId, g, m.t, { startTime: times.get(m.attempt.key)! });
    if (started.length < 2) return;
    const at = started.map((m) => times.get(m.attempt.key)!);
    const group = this.site.view.plan.groups[g]!.name;
    this.site.log.info({ group, members: started.length, startSkewMs: Math.max(...at) - Math.min(...at) }, "commands started");
  }

  /** The runtime could not start these commands: they fail (OSMO's barrier code), and what is left of them is stopped. */
  private releaseFailed(g: number, members: ReadyMember[], error: Error): void {
    const tasks = this.site.state.tasks[g]!;
    const current = members.filter(({ t, retryId }) => tasks[t]!.retryId === retryId && !isFinal(tasks[t]!.status ?? "WAITING"));
    this.site.log.warn(
      { group: this.site.view.plan.groups[g]!.name, keys: members.map((m) => m.attempt.key), err: error },
      "release failed",
    );
    // Stopped before their ends are decided: their group's end must not give them a grace they have no use for.
    for (const { attempt } of current) void stopAttempt(attempt, 0);
    // The lead last: each member is told why it failed before the lead's end ends the group.
    const lead = this.site.view.plan.groups[g]!.tasks.findIndex((task) => task.lead);
    current.sort((a, b) => Number(a.t === lead) - Number(b.t === lead));
    for (const { t } of current)
      if (!isFinal(tasks[t]!.status ?? "WAITING"))
        this.site.finishTask(g, t, "FAILED", `the barrier could not be released: ${error.message}`, RuntimeExitCode.BARRIER_FAILED);
    this.site.requestTick();
  }

  /**
   * Kept tasks: on disk before the commands start, so that a troupe dying between the two leaves a RUNNING
   * attempt that never started (its keeper stops it and says so), never a started one recorded as preparing.
   * The groups released in one burst share one commit (a commit per group cost 0.3 ms each).
   */
  private releaseDurably(g: number, members: ReadyMember[]): void {
    if (this.toRelease.length === 0)
      queueMicrotask(() => {
        const batch = this.toRelease.splice(0);
        this.site.view.recorder.flush?.();
        for (const release of batch) this.releaseNow(release.g, release.members);
      });
    this.toRelease.push({ g, members });
  }

  /**
   * Task t's running attempt, which a previous troupe process released: true
   * when the pool found it (its end then comes as for any attempt).
   */
  async reattach(g: number, t: number, handleId: string | undefined): Promise<boolean> {
    const retryId = this.site.state.tasks[g]![t]!.retryId;
    this.handleOf(g, handleId);
    this.site.state.groups[g]!.live++;
    const { events, attempt } = this.watch(g, t, retryId);
    let found = false;
    try {
      found = await attempt.handle.reattach(attemptLaunch(this.site.view, g, t, retryId, this.site.state.groups[g]!.placements ?? {}));
    } catch (error) {
      this.site.log.warn({ key: attempt.key, err: error }, "re-attach failed");
      events.end({ kind: "lost", message: `troupe restarted and could not re-attach the attempt: ${(error as Error).message}` });
      return false;
    }
    if (!found) events.end({ kind: "lost", message: "troupe restarted and the attempt could not be found" });
    else cameUp(attempt);
    return found;
  }
}
