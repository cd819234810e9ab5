/**
 * A test runtime for the port: a PoolBackend that decorates a real one (so
 * every member is a real process or container) and plays what a cluster
 * does to it, as a script says: members placed late and in any order, or
 * never; a member that never becomes ready (start timeout); a release that
 * fails; a member lost, evicted or preempted while it runs, or ending with
 * a code of the script's. A fault stops the real member and reports the
 * scripted outcome in place of its own (a failed release: the real pool's
 * outcome of a member stopped before its command started), exactly once.
 *
 * The script, by attempt key (`group/task/retry`), `group/task` (every
 * attempt) or `task` (that task in any group), the first that matches:
 *
 *   const pool = new ChaosPool(new LocalPool(...), {
 *     "pair/server": { placeAfterMs: 400 },            // placed late
 *     "pair/client": { placeAfterMs: 100 },            // ... and before server
 *     "pair/client/0": { end: evicted(300) },          // its first attempt evicted 300 ms into its run
 *     worker: { startTimeoutAfterMs: 200 },            // never ready; start-timeout after 200 ms
 *   }, { placement: "cluster" });
 *
 * It also watches the engine: a prepare before `placed`, or a release of a
 * member that is not `ready`, is recorded in `violations` (and otherwise
 * passed on), so tests of the engine can assert that it kept the port's order.
 */
import type { Readable } from "node:stream";
import type {
  GroupHandle,
  GroupListener,
  GroupRef,
  MemberOutcome,
  MemberRef,
  Placement,
  PoolBackend,
  PoolCapabilities,
  PrepareOptions,
  RunContext,
  RunSession,
  TaskLaunch,
} from "../../src/port/index.js";

export interface MemberScript {
  /** `placed` comes this long after place() (a group's members then come in the order of their delays). */
  placeAfterMs?: number;
  /** `placed` never comes: the member stays pending until it is stopped (a cluster with no room for it). */
  neverPlaced?: boolean;
  /** `ready` never comes: this long after prepare() the member is stopped and `start-timeout` reported. */
  startTimeoutAfterMs?: number;
  /** A release that includes this member rejects with this message; every member of it is stopped instead (and reported as the real pool found it). */
  failRelease?: string;
  /** This long after its release the member is stopped and `outcome` reported in place of its own end. */
  end?: ScriptedEnd;
}

export interface ScriptedEnd {
  afterMs: number;
  outcome: MemberOutcome;
}

export type ChaosScript = Record<string, MemberScript>;

/** Scripted ends, for `end:`. */
export const lost = (afterMs: number, message = "chaos: the member was lost"): ScriptedEnd => ({
  afterMs,
  outcome: { kind: "lost", message },
});
export const evicted = (afterMs: number, message = "chaos: evicted (node under memory pressure)"): ScriptedEnd => ({
  afterMs,
  outcome: { kind: "evicted", message },
});
export const preempted = (afterMs: number, message = "chaos: preempted by a more important workload"): ScriptedEnd => ({
  afterMs,
  outcome: { kind: "preempted", message },
});
export const exitsWith = (afterMs: number, code: number, reason?: string): ScriptedEnd => ({
  afterMs,
  outcome: reason === undefined ? { kind: "exited", code } : { kind: "exited", code, reason },
});

export interface ChaosOptions {
  /** Who places groups, as the pool says it (default: the inner pool's answer). "cluster" makes the engine count SCHEDULING. */
  placement?: PoolCapabilities["placement"];
}

export class ChaosPool implements PoolBackend {
  readonly kind: string;
  readonly capabilities: PoolCapabilities;
  /** What the engine did against the port's order (prepare before placed, release before ready). */
  readonly violations: string[] = [];

  constructor(
    private readonly inner: PoolBackend,
    /** Read at every place() and prepare(): a test may change it between runs. */
    public script: ChaosScript = {},
    options: ChaosOptions = {},
  ) {
    this.kind = inner.kind;
    this.capabilities = { ...inner.capabilities, placement: options.placement ?? inner.capabilities.placement };
  }

  describe(): string {
    return `${this.inner.describe()} (under chaos: faults as scripted)`;
  }

  notices(): string[] {
    return this.inner.notices();
  }

  async openSession(run: RunContext): Promise<RunSession> {
    const session = await this.inner.openSession(run);
    const chaos: RunSession = {
      openGroup: (group, listener, id) => new ChaosGroup(session, group, listener, id, this),
      close: () => session.close(),
    };
    if (session.ensureImage) chaos.ensureImage = (image) => session.ensureImage!(image);
    return chaos;
  }

  sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    return this.inner.sweep(spare);
  }

  /** The script for an attempt: by its key, then `group/task`, then `task`. */
  scriptOf(key: string): MemberScript {
    const [group, task] = key.split("/");
    return this.script[key] ?? this.script[`${group}/${task}`] ?? this.script[task ?? ""] ?? {};
  }
}

interface MemberState {
  script: MemberScript;
  placed: boolean;
  ready: boolean;
  /** `exited` was reported: nothing more of this key is. */
  ended: boolean;
  /** The outcome to report in place of the real member's once it has ended (a fault stopped it). */
  override?: MemberOutcome;
  timers: NodeJS.Timeout[];
}

class ChaosGroup implements GroupHandle {
  private readonly inner: GroupHandle;
  private readonly members = new Map<string, MemberState>();
  private closed = false;

  constructor(
    session: RunSession,
    group: GroupRef,
    private readonly listener: GroupListener,
    id: string | undefined,
    private readonly pool: ChaosPool,
  ) {
    this.inner = session.openGroup(
      group,
      {
        placed: (key, placement) => this.innerPlaced(key, placement),
        ready: (key) => this.innerReady(key),
        exited: (key, outcome) => this.innerExited(key, outcome),
      },
      id,
    );
  }

  get id(): string {
    return this.inner.id;
  }

  private state(key: string): MemberState {
    let state = this.members.get(key);
    if (!state) {
      state = { script: this.pool.scriptOf(key), placed: false, ready: false, ended: false, timers: [] };
      this.members.set(key, state);
    }
    return state;
  }

  private later(state: MemberState, ms: number, action: () => void): void {
    if (this.closed || state.ended) return;
    state.timers.push(setTimeout(action, ms));
  }

  // ---- what the real pool reports, as the script lets it through

  private innerPlaced(key: string, placement: Placement): void {
    const state = this.state(key);
    if (state.ended || state.script.neverPlaced) return;
    const report = () => {
      if (state.ended || state.placed) return;
      state.placed = true;
      this.listener.placed(key, placement);
      // Prepared early (an engine out of order) and ready meanwhile: the events keep their order.
      if (state.ready) this.listener.ready(key);
    };
    if (state.script.placeAfterMs === undefined) report();
    else this.later(state, state.script.placeAfterMs, report);
  }

  private innerReady(key: string): void {
    const state = this.state(key);
    if (state.ended || state.script.startTimeoutAfterMs !== undefined) return;
    state.ready = true;
    if (state.placed) this.listener.ready(key);
  }

  private innerExited(key: string, outcome: MemberOutcome): void {
    this.finish(key, this.state(key).override ?? outcome);
  }

  /** Reports the member's end, once. */
  private finish(key: string, outcome: MemberOutcome): void {
    const state = this.state(key);
    if (state.ended) return;
    state.ended = true;
    state.timers.splice(0).forEach(clearTimeout);
    this.listener.exited(key, outcome);
  }

  /** Stops the real member; its end is reported as `outcome` (unless it ended on its own first). */
  private fault(key: string, outcome: MemberOutcome): void {
    const state = this.state(key);
    if (state.ended || state.override) return;
    state.override = outcome;
    void this.inner.stop(key, 0).catch(() => undefined);
  }

  // ---- what the engine asks

  place(members: readonly MemberRef[]): void {
    for (const member of members) {
      // A new attempt of a key (never the case with the engine's keys, but cheap to allow): a fresh state.
      this.members.delete(member.key);
      this.state(member.key);
    }
    this.inner.place(members);
  }

  prepare(launch: TaskLaunch, options?: PrepareOptions): void {
    const state = this.state(launch.key);
    if (!state.placed) this.pool.violations.push(`prepare before placed: ${launch.key}`);
    // A script that holds the member back (never ready, a release that fails) needs its command held too.
    const holds = state.script.startTimeoutAfterMs !== undefined || state.script.failRelease !== undefined;
    this.inner.prepare(launch, holds ? undefined : options);
    const timeout = state.script.startTimeoutAfterMs;
    if (timeout !== undefined)
      this.later(state, timeout, () =>
        this.fault(launch.key, { kind: "start-timeout", message: `chaos: not ready within ${timeout} ms of its start` }),
      );
  }

  async release(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const state = this.state(key);
      if (!state.ready || !state.placed) this.pool.violations.push(`release before ready: ${key}`);
    }
    const failure = keys.map((key) => this.state(key).script.failRelease).find((message) => message !== undefined);
    if (failure !== undefined) {
      await Promise.all(keys.map((key) => this.inner.stop(key, 0).catch(() => undefined)));
      throw new Error(failure);
    }
    await this.inner.release(keys);
    for (const key of keys) {
      const state = this.state(key);
      const end = state.script.end;
      if (end) this.later(state, end.afterMs, () => this.fault(key, end.outcome));
    }
  }

  async stop(key: string, graceMs: number): Promise<void> {
    const state = this.members.get(key);
    state?.timers.splice(0).forEach(clearTimeout);
    if (!state || state.placed || state.ended) return this.inner.stop(key, graceMs);
    // Pending as far as the engine knows: the cluster drops it, and the real member placed underneath goes too
    // (whether or not the real pool reports that member's end, this is the end reported).
    const dropped: MemberOutcome = { kind: "start-failed", message: "chaos: stopped while waiting to be placed" };
    state.override = dropped;
    await this.inner.stop(key, 0);
    this.finish(key, dropped);
  }

  restart(key: string, graceMs: number): Promise<boolean> {
    return this.inner.restart(key, graceMs);
  }

  canRestart(key: string): boolean {
    return this.inner.canRestart(key);
  }

  async reattach(launch: TaskLaunch): Promise<boolean> {
    // Placed, prepared and released by the process that started it.
    Object.assign(this.state(launch.key), { placed: true, ready: true });
    return this.inner.reattach(launch);
  }

  logs(key: string): Readable {
    return this.inner.logs(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const state of this.members.values()) state.timers.splice(0).forEach(clearTimeout);
    await this.inner.close();
  }
}
