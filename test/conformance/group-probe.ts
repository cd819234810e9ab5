/**
 * One group driven through the port the way the engine drives it (place,
 * then prepare with every token resolved from the placements, then release),
 * with every event it gets recorded and checked against the port's promises:
 * no event for a key it was not told of, `placed` and `ready` at most once
 * and in that order, `exited` exactly once and nothing after it. A case asks
 * for the events it waits on; `violations` says what broke a promise.
 */
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { GroupHandle, GroupListener, MemberOutcome, Placement, RunContext, RunSession, TaskLaunch } from "../../src/port/index.js";

/** What a member's command is built from: the group's `{{host:X}}` names (by task name) and its `{{output}}`. */
export interface CommandTokens {
  hosts: Record<string, string>;
  output: string;
}

/** What a case gives of a member's launch: its command, its tokens resolved. */
export type CommandOf = (tokens: CommandTokens) => string[];

export interface ProbeOptions {
  /** TaskLaunch.image (the host runtime stands in for any image). */
  image: string;
  /** How long a wait for an event may take before the case fails saying which. */
  eventTimeoutMs?: number;
}

type Waiter = () => void;

export class GroupProbe implements GroupListener {
  readonly handle: GroupHandle;
  readonly placements = new Map<string, Placement>();
  /** When each `placed` came (Date.now()). */
  readonly placedAt = new Map<string, number>();
  readonly readyKeys = new Set<string>();
  readonly outcomes = new Map<string, MemberOutcome>();
  /** When each `exited` came (Date.now()). */
  readonly exitedAt = new Map<string, number>();
  /** Every event in the order it came, as `type key`. */
  readonly events: string[] = [];
  readonly violations: string[] = [];
  private readonly known = new Set<string>();
  private readonly launches = new Map<string, TaskLaunch>();
  /** Restarts in place asked for, each of which may bring one more `ready`. */
  private readonly restarts = new Map<string, number>();
  private waiters: Waiter[] = [];

  constructor(
    session: RunSession,
    readonly run: RunContext,
    readonly groupName: string,
    readonly tasks: readonly string[],
    private readonly options: ProbeOptions,
    id?: string,
  ) {
    this.handle = session.openGroup({ name: groupName, members: tasks }, this, id);
  }

  /** The attempt key of task `task`'s attempt `retryId`, as the engine makes it. */
  key(task: string, retryId = 0): string {
    return `${this.groupName}/${task}/${retryId}`;
  }

  // ---- the listener

  placed(key: string, placement: Placement): void {
    this.events.push(`placed ${key}`);
    if (!this.check(key, "placed")) return;
    if (this.placements.has(key)) this.violations.push(`placed twice: ${key}`);
    this.placements.set(key, placement);
    this.placedAt.set(key, Date.now());
    this.wake();
  }

  ready(key: string): void {
    this.events.push(`ready ${key}`);
    if (!this.check(key, "ready")) return;
    if (!this.placements.has(key)) this.violations.push(`ready before placed: ${key}`);
    const restarts = this.restarts.get(key) ?? 0;
    if (this.readyKeys.has(key) && restarts > 0) this.restarts.set(key, restarts - 1);
    else if (this.readyKeys.has(key)) this.violations.push(`ready twice: ${key}`);
    this.readyKeys.add(key);
    this.wake();
  }

  exited(key: string, outcome: MemberOutcome): void {
    this.events.push(`exited ${key} ${JSON.stringify(outcome)}`);
    if (!this.known.has(key)) this.violations.push(`exited for a key never placed: ${key}`);
    else if (this.outcomes.has(key)) this.violations.push(`exited twice: ${key} (${JSON.stringify(outcome)})`);
    else {
      this.outcomes.set(key, outcome);
      this.exitedAt.set(key, Date.now());
    }
    this.wake();
  }

  /** An event other than `exited` is for a key this group was told of, and comes before its `exited`. */
  private check(key: string, event: string): boolean {
    if (!this.known.has(key)) this.violations.push(`${event} for a key never placed: ${key}`);
    else if (this.outcomes.has(key)) this.violations.push(`${event} after exited: ${key}`);
    else return true;
    return false;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  /** Resolves with `probe()` once it is defined; fails naming `what` after the event timeout. */
  async until<T>(what: string, probe: () => T | undefined, timeoutMs = this.options.eventTimeoutMs ?? 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (events so far: ${this.events.join("; ") || "none"})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  // ---- driving the group

  /** A restart in place: the member may say `ready` again before its next release. */
  async restart(key: string, graceMs: number): Promise<boolean> {
    this.restarts.set(key, (this.restarts.get(key) ?? 0) + 1);
    return this.handle.restart(key, graceMs);
  }

  /** reattach() an attempt a troupe before this one released; its key becomes one of this group's. */
  reattach(launch: TaskLaunch): Promise<boolean> {
    this.known.add(launch.key);
    this.launches.set(launch.key, launch);
    return this.handle.reattach(launch);
  }

  /** place() for these tasks' attempts; `known` grows first, so events may come during the call. */
  place(tasks: readonly string[] = this.tasks, retryId = 0): string[] {
    const members = tasks.map((taskName) => ({ key: this.key(taskName, retryId), taskName, retryId }));
    for (const m of members) this.known.add(m.key);
    this.handle.place(members);
    return members.map((m) => m.key);
  }

  placedAll(keys: readonly string[]): Promise<Placement[]> {
    return this.until(`placed ${keys.join(", ")}`, () =>
      keys.every((k) => this.placements.has(k)) ? keys.map((k) => this.placements.get(k)!) : undefined,
    );
  }

  readyAll(keys: readonly string[]): Promise<void> {
    return this.until(`ready ${keys.join(", ")}`, () => (keys.every((k) => this.readyKeys.has(k)) ? true : undefined)).then(
      () => undefined,
    );
  }

  exit(key: string, timeoutMs?: number): Promise<MemberOutcome> {
    return this.until(`exited ${key}`, () => this.outcomes.get(key), timeoutMs);
  }

  /** The group's `{{host:X}}` names, by task name, as attempt `retryId` of a member sees them. */
  hostNames(retryId = 0): Record<string, string> {
    return Object.fromEntries(this.tasks.map((t) => [t, this.placementOf(t, retryId)?.hostName ?? ""]));
  }

  /** Where task `task` is, as its siblings see it from attempt `retryId`: that attempt's place, or its latest attempt's before. */
  private placementOf(task: string, retryId: number): Placement | undefined {
    for (let r = retryId; r >= 0; r--) {
      const placement = this.placements.get(this.key(task, r));
      if (placement) return placement;
    }
    return undefined;
  }

  /** The launch of `task`'s attempt as the engine would build it: tokens resolved, paths under the run's data directory. */
  launch(task: string, command: CommandOf, retryId = 0, extra: Partial<TaskLaunch> = {}): TaskLaunch {
    const key = this.key(task, retryId);
    const placement = this.placements.get(key);
    if (!placement) throw new Error(`${key} is not placed: no launch can be built for it`);
    const existing = this.launches.get(key);
    if (existing) return existing;
    const outputDir = outputDirOf(this.run, this.groupName, task, retryId);
    const launch: TaskLaunch = {
      key,
      taskName: task,
      groupName: this.groupName,
      retryId,
      image: this.options.image,
      argv: command({ hosts: this.hostNames(retryId), output: outputDir }),
      env: {},
      files: [],
      outputDir,
      inputDirs: [],
      address: placement.address,
      hosts: Object.fromEntries(this.tasks.map((t) => [t, this.placementOf(t, retryId)?.address ?? ""])),
      logPath: join(this.run.dataDir, "logs", `${this.groupName}.${task}.${retryId}.log`),
      ...extra,
    };
    this.launches.set(key, launch);
    return launch;
  }

  /** prepare() each task's attempt with its command; returns the keys. */
  prepare(commands: Record<string, CommandOf>, retryId = 0): string[] {
    return Object.entries(commands).map(([task, command]) => {
      const launch = this.launch(task, command, retryId);
      this.handle.prepare(launch);
      return launch.key;
    });
  }

  /** Places, prepares and awaits `ready` for every task of `commands`. */
  async upToReady(commands: Record<string, CommandOf>): Promise<string[]> {
    const keys = this.place(Object.keys(commands));
    await this.placedAll(keys);
    this.prepare(commands);
    await this.readyAll(keys);
    return keys;
  }

  /** Places, prepares, releases; resolves once released. */
  async started(commands: Record<string, CommandOf>): Promise<string[]> {
    const keys = await this.upToReady(commands);
    await this.handle.release(keys);
    return keys;
  }
}

/** Where an attempt's `{{output}}` is, under its run's data directory. */
export function outputDirOf(run: RunContext, group: string, task: string, retryId = 0): string {
  return join(run.dataDir, "outputs", group, task, String(retryId));
}

/** Everything `stream` gives until it ends, with the time each chunk came. */
export function readAll(stream: Readable): Promise<{ text: string; chunks: Array<{ at: number; text: string }> }> {
  const chunks: Array<{ at: number; text: string }> = [];
  return new Promise((resolve, reject) => {
    stream.on("data", (chunk: Buffer | string) => chunks.push({ at: Date.now(), text: chunk.toString() }));
    stream.on("error", reject);
    stream.on("end", () => resolve({ text: chunks.map((c) => c.text).join(""), chunks }));
  });
}

/** `sh -c SCRIPT`, the form every case's command takes (the host's sh and busybox's alike). */
export const sh =
  (script: string | ((tokens: CommandTokens) => string)): CommandOf =>
  (tokens) => ["sh", "-c", typeof script === "string" ? script : script(tokens)];
