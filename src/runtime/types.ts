/**
 * The member-level interface of this machine's runtimes (host processes,
 * containers): one member at a time, addresses known before any member is
 * prepared, handles in memory. runtime/local-pool.ts turns one into the
 * port the engine speaks (port/pool.ts). A runtime does; it never decides
 * statuses: it reports what happened and the engine decides.
 */

import type { PoolCapabilities, PrepareOptions, RunContext, TaskLaunch } from "../port/index.js";

export type { TaskLaunch, OutputSink, RunContext } from "../port/index.js";
export { TaskStartError } from "../port/index.js";

export interface ExitInfo {
  /** The command's exit code, 128+N for a signal N. */
  code: number;
  /** Set when the runtime could not start the command at all. */
  startError?: string;
  /** Why it ended, when the runtime knows more than the code (e.g. killed for using too much memory). */
  reason?: string;
  /** Set when the runtime lost track of the attempt and cannot know how it ended: why. */
  lost?: string;
}

/** A member whose sandbox is up; its command starts on `release()`. */
export interface PreparedMember {
  readonly launch: TaskLaunch;
  /** Start the command (the barrier releases every member together). */
  release(): void;
  /** Resolves once, when the attempt has ended (or failed to start). */
  readonly exited: Promise<ExitInfo>;
  /** Graceful signal, then a forced kill after `graceMs`; resolves when nothing of it is left. */
  stop(graceMs: number): Promise<void>;
  /**
   * OSMO's restart in place, where the runtime can (a sibling of this member
   * was rescheduled): the released command is stopped (graceful signal,
   * then every process of the sandbox killed after `graceMs`) and the
   * sandbox kept, with its files, its /tmp and its address, until the next
   * `release()`. Resolves true once it waits for that release; false when the
   * attempt ended first (its end is then reported by `exited`, as usual).
   * Absent: this member cannot; the engine gives it a fresh attempt instead.
   */
  readonly restart?: (graceMs: number) => Promise<boolean>;
}

export interface Runtime {
  /** For the first line of `troupe run`: which runtime, which isolation. */
  describe(): string;
  /** Notes to tell the user once (for example which images the host stands in for). */
  notices(): string[];
  open(run: RunContext): Promise<void>;
  /** Addresses for a group's members, known before any of them starts. */
  addresses(taskNames: readonly string[]): Promise<Record<string, string>>;
  /**
   * What `{{host:TASK}}` becomes in the members of `groupName`: a name that
   * resolves to `address` by DNS in every member, from before any member
   * starts until the group gives its addresses back (runtime/member-names.ts).
   * Without it, the address itself.
   */
  hostName?(groupName: string, taskName: string, address: string): string;
  /** Give back addresses once their tasks have ended. */
  releaseAddresses(addresses: readonly string[]): void;
  /**
   * Runtimes that run images: makes `image` ready (checked, pulled as the
   * pull policy says), once per image and run, as `prepare` would for a task
   * of it; rejects with the TaskStartError those tasks fail with. The engine
   * asks it for every image of the run as the run starts (engine/image-check.ts).
   */
  ensureImage?(image: string): Promise<void>;
  /**
   * Bring up one member's sandbox (inputs, files, network). Resolves when it is
   * ready to start its command, rejects with a user-facing message if it cannot be.
   * With `releaseWhenReady` (PrepareOptions) it may start the command as it
   * comes up; the member's first `release()` then changes nothing.
   */
  prepare(launch: TaskLaunch, options?: PrepareOptions): Promise<PreparedMember>;
  /**
   * Whether tasks started with `keepTasks` outlive this process here (false,
   * for example, without the troupe-spawner helper).
   */
  readonly keepsTasks: boolean;
  /** Whether a task can run on the machine's own network (PoolCapabilities.hostNetwork; `TaskLaunch.hostNetwork`). */
  readonly hostNetwork?: boolean;
  /** What a task sees of the file system (PoolCapabilities.mounts and dataPaths). */
  readonly taskView: Pick<PoolCapabilities, "mounts" | "dataPaths">;
  /**
   * A task attempt a previous troupe process started with `keepTasks` (its
   * command released): a handle on it, or undefined when its fate cannot be
   * known. `launch` is the attempt's launch as it was built then.
   */
  reattach(launch: TaskLaunch): Promise<PreparedMember | undefined>;
  /** Remove everything this run created. Safe to call more than once. */
  close(): Promise<void>;
  /**
   * Remove what runs that died without closing left behind, but for the runs
   * in `spare` (being resumed); returns what was removed.
   */
  sweep(spare?: ReadonlySet<string>): Promise<string[]>;
}
