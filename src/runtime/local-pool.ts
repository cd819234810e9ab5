/**
 * This machine's runtimes (host processes, containers) as the port's pool
 * backend: a `Runtime` (types.ts) works member by member with addresses
 * known before any member is prepared; a group's handle allocates them at
 * its first `place`, so placement is immediate, and hands each member's
 * life to the engine as events.
 */
import type { Readable } from "node:stream";
import {
  startFailure,
  type GroupHandle,
  type GroupListener,
  type GroupRef,
  type MemberOutcome,
  type MemberRef,
  type PoolBackend,
  type PoolCapabilities,
  type PrepareOptions,
  type RunContext,
  type RunSession,
  type TaskLaunch,
} from "../port/index.js";
import { tolerated } from "../util/log.js";
import { followLog } from "./follow-log.js";
import { machineAddress } from "./machine-address.js";
import type { ExitInfo, PreparedMember, Runtime } from "./types.js";

/** What a member-level runtime's pool can do: the engine places; members share this machine's disk. */
function localCapabilities(runtime: Runtime): PoolCapabilities {
  return {
    placement: "engine",
    sharedFileSystem: true,
    tasksOutliveTroupe: runtime.keepsTasks,
    localLogs: true,
    hostNetwork: runtime.hostNetwork === true,
    ...runtime.taskView,
  };
}

export class LocalPool implements PoolBackend {
  readonly capabilities: PoolCapabilities;
  private spare: Runtime | undefined;

  /** `makeRuntime` gives a fresh runtime for each run (a runtime holds one run's state). */
  constructor(
    readonly kind: string,
    private readonly makeRuntime: () => Runtime,
  ) {
    this.spare = makeRuntime();
    this.capabilities = localCapabilities(this.spare);
  }

  /** The runtime the next session will use; describe, notices and sweep ask it. */
  private next(): Runtime {
    return (this.spare ??= this.makeRuntime());
  }

  describe(): string {
    return this.next().describe();
  }

  notices(): string[] {
    return this.next().notices();
  }

  async openSession(run: RunContext): Promise<RunSession> {
    const runtime = this.next();
    this.spare = undefined;
    try {
      await runtime.open(run);
    } catch (error) {
      // What the open made before it failed goes now: a session that never opened is never closed.
      await runtime.close().catch(tolerated("closing a runtime whose open failed", { run: run.runId }, "warn"));
      throw error;
    }
    return new LocalSession(runtime, run);
  }

  sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    return this.next().sweep(spare);
  }
}

class LocalSession implements RunSession {
  readonly ensureImage?: (image: string) => Promise<void>;

  constructor(
    private readonly runtime: Runtime,
    private readonly run: RunContext,
  ) {
    if (runtime.ensureImage) this.ensureImage = (image) => runtime.ensureImage!(image);
  }

  openGroup(group: GroupRef, listener: GroupListener, id?: string): GroupHandle {
    return new LocalGroup(this.runtime, group, listener, id ?? `${this.run.runId}/${group.name}`);
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}

/** A member's attempt as the group knows it: its sandbox once prepared, its end once known. */
interface LocalMember {
  prepared?: PreparedMember;
  /** Its sandbox coming up (prepare asked; settled once answered). */
  preparing?: Promise<void>;
  /** The runtime has answered its prepare (a sandbox, or why not). */
  answered?: boolean;
  /** A stop was asked for: a sandbox still coming up is stopped once up, never reported ready. */
  stopped?: boolean;
  ended: Promise<unknown>;
  end: () => void;
  reported: boolean;
}

class LocalGroup implements GroupHandle {
  private addresses: Promise<Record<string, string>> | undefined;
  private given: Record<string, string> | undefined;
  private readonly members = new Map<string, LocalMember>();
  private closed = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly group: GroupRef,
    private readonly listener: GroupListener,
    readonly id: string,
  ) {}

  place(members: readonly MemberRef[]): void {
    for (const { key } of members) this.member(key);
    this.addresses ??= this.runtime.addresses(this.group.members).then((addresses) => (this.given = addresses));
    this.addresses.then(
      (addresses) => {
        for (const { key, taskName, hostNetwork } of members) {
          // A member on the machine's own network is reached at the machine's address, by that address (no name of
          // the group's network reaches it); the one allocated for it stays unused until the group gives them back.
          if (hostNetwork) {
            const address = machineAddress();
            this.listener.placed(key, { address, hostName: address });
            continue;
          }
          const address = addresses[taskName] ?? "";
          const hostName = this.runtime.hostName?.(this.group.name, taskName, address) ?? address;
          this.listener.placed(key, { address, hostName });
        }
      },
      (error: Error) => {
        for (const { key } of members) this.report(key, { kind: "backend-error", message: `no addresses for the group: ${error.message}` });
      },
    );
  }

  prepare(launch: TaskLaunch, options?: PrepareOptions): void {
    const member = this.member(launch.key);
    member.preparing = this.runtime.prepare(launch, options).then(
      (prepared) => {
        member.answered = true;
        this.adopt(launch.key, prepared);
        if (member.stopped) void prepared.stop(0);
        else this.listener.ready(launch.key);
      },
      (error: unknown) => {
        member.answered = true;
        this.report(launch.key, startFailure(error));
      },
    );
  }

  async release(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.members.get(key)?.prepared?.release();
  }

  /**
   * Any member may be stopped. One still coming up ends at once (its sandbox may never come up: a `podman run`
   * that does not return must not hold a cancel), and is stopped as it comes up, if it does; one only placed
   * ends at once.
   */
  async stop(key: string, graceMs: number): Promise<void> {
    const member = this.members.get(key);
    if (!member || member.reported) return;
    member.stopped = true;
    if (member.prepared) return member.prepared.stop(graceMs);
    if (member.preparing) {
      this.report(key, { kind: "start-failed", message: "stopped while its sandbox was being made" });
      await member.preparing;
      // Set meanwhile by the prepare (adopt), which stopped it as it came up: wait for that stop to end.
      const prepared = member.prepared as PreparedMember | undefined;
      await prepared?.stop(0);
      return;
    }
    this.report(key, { kind: "start-failed", message: "stopped before its sandbox was prepared" });
  }

  restart(key: string, graceMs: number): Promise<boolean> {
    const restart = this.members.get(key)?.prepared?.restart;
    return restart ? restart(graceMs) : Promise.resolve(false);
  }

  canRestart(key: string): boolean {
    return this.members.get(key)?.prepared?.restart !== undefined;
  }

  async reattach(launch: TaskLaunch): Promise<boolean> {
    // Given back with the group. Not the addresses of its next placement: an earlier process's are no lease of this
    // runtime's (no network of the container runtime's has them), and a member placed again (a group restarted while
    // it was being prepared, beside a member that had ended) would fail to start on them.
    this.given ??= launch.hosts;
    const prepared = await this.runtime.reattach(launch);
    if (!prepared) return false;
    this.adopt(launch.key, prepared);
    return true;
  }

  logs(key: string): Readable {
    const member = this.member(key);
    const path = member.prepared?.launch.logPath;
    if (!path) throw new Error(`no attempt ${key} has been prepared in group ${this.group.name}`);
    return followLog(path, member.ended);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.given) return;
    const given = Object.values(this.given);
    // A sandbox still being made (a member ended by a stop or its start timeout before its runtime answered) may
    // yet take its address: the group's addresses go back only once every such prepare has been answered.
    const unanswered = [...this.members.values()].filter((m) => m.preparing && !m.answered).map((m) => m.preparing);
    if (unanswered.length === 0) this.runtime.releaseAddresses(given);
    else void Promise.allSettled(unanswered).then(() => this.runtime.releaseAddresses(given));
  }

  private member(key: string): LocalMember {
    let member = this.members.get(key);
    if (!member) {
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      member = { ended, end, reported: false };
      this.members.set(key, member);
    }
    return member;
  }

  private adopt(key: string, prepared: PreparedMember): void {
    this.member(key).prepared = prepared;
    void prepared.exited.then((info) => this.report(key, outcomeOf(info)));
  }

  /** Every attempt's end is reported once. */
  private report(key: string, outcome: MemberOutcome): void {
    const member = this.member(key);
    if (member.reported) return;
    member.reported = true;
    member.end();
    this.listener.exited(key, outcome);
  }
}

function outcomeOf(info: ExitInfo): MemberOutcome {
  if (info.lost !== undefined) return { kind: "lost", message: info.lost };
  if (info.startError !== undefined) return { kind: "start-failed", message: info.startError };
  return { kind: "exited", code: info.code, ...(info.reason !== undefined ? { reason: info.reason } : {}) };
}
