/**
 * The runtime port: what the engine asks of any pool that runs tasks (this
 * machine's processes and containers, a Slurm or Kubernetes cluster), in
 * two scopes. A `PoolBackend` lives as long as the pool: it says what the
 * pool can do, opens a `RunSession` per run and sweeps what dead owners
 * left. A session starts whole groups and hands back a `GroupHandle` with a
 * durable id, which the store records so that a restarted troupe finds the
 * group again through the same handle.
 *
 * A group goes through the handle in steps, each answered by events:
 *   place(members)    -> placed(key, address, node)  (or exited: it could not be placed;
 *                        unplaced(key, reason) meanwhile, where the cluster says why it waits)
 *   prepare(launch)   -> ready(key)                  (or exited: start failed, image pull, ...)
 *                        (with releaseWhenReady, a group of one: the command may start as it comes up)
 *   release(keys)     -> the commands start; the promise rejects when they could not be
 *   ...               -> exited(key, outcome)        (exit code, evicted, preempted, lost, ...)
 * Tokens are resolved between place and prepare: `{{host:X}}` is known once
 * every member is placed, so a cluster may place members late and in any
 * order. Runtimes report; only the engine decides statuses.
 */
import type { Readable } from "node:stream";
import type { RunContext, TaskLaunch, TaskMount } from "./launch.js";
import type { MemberOutcome } from "./outcome.js";

export interface PoolCapabilities {
  /**
   * Who admits and places groups. "engine": troupe's scheduler admits a group
   * against the pool's capacity and placement is immediate. "cluster": the
   * cluster's own scheduler decides; the time until every member is placed
   * counts as SCHEDULING (and toward the queue timeout).
   */
  placement: "engine" | "cluster";
  /** Members see troupe's file system: outputs and inputs are local directories. */
  sharedFileSystem: boolean;
  /** Tasks started for a run with `keepTasks` outlive this troupe process (a restarted one re-attaches them). */
  tasksOutliveTroupe: boolean;
  /** Logs are written by the runtime at each launch's `logPath`; otherwise they come only from `GroupHandle.logs`. */
  localLogs: boolean;
  /**
   * The runtime shows a task the launch's `mounts` at their targets (it gives
   * each task a mount namespace of its own). Without it, a task sees this
   * machine's paths as they are and is given no mounts.
   */
  mounts: boolean;
  /**
   * Where a task sees its output and inputs, and so what `{{output}}` and
   * `{{input:N}}` become: "osmo", OSMO's /osmo/data paths (the runtime can
   * make directories anywhere in the task's file system: containers);
   * "host", the directories' own paths (a sandbox over the host's root,
   * which cannot make a new top-level directory).
   */
  dataPaths: "osmo" | "host";
  /**
   * The runtime can run a task on the machine's own network (`hostNetwork:
   * true`: no network namespace of its own, reached at the machine's
   * address). Without it such a workflow is refused before it runs.
   */
  hostNetwork?: boolean;
  /**
   * false: no data reaches the runtime's tasks yet: neither `{{output}}` nor
   * `{{input:N}}` exists in them, no input is brought and no output taken
   * (a Kubernetes pod, until pods move data themselves). A workflow that
   * passes or keeps data is then refused before it runs. Absent: data reaches them.
   */
  taskData?: boolean;
  /**
   * The platforms a task's resource may name (`platform:`), each with where its tasks go. Absent: the pool
   * has none, and runs a task wherever it runs any (`platform`, `nodesExcluded` and `storage` then only
   * warned about at validation).
   */
  platforms?: readonly string[];
  /**
   * The runtime makes a member's sandbox when it places it (a Kubernetes
   * pod, whose volumes are fixed when it is made): it is then given the
   * member's mounts with the member (MemberRef.mounts). Absent: false.
   */
  sandboxAtPlacement?: boolean;
  /**
   * How many tasks a run starts at once when neither it nor its pool says
   * (`--max-parallel`, a pool's `max_parallel`). Absent: the engine's
   * default for this machine (engine/max-parallel.ts). A cluster that queues
   * what it cannot place yet admits tasks itself and may take more.
   */
  defaultMaxParallel?: number;
}

export interface PoolBackend {
  /** The runtime's name, as `--runtime` and a pool's `runtime:` say it. */
  readonly kind: string;
  readonly capabilities: PoolCapabilities;
  /** For the first line of `troupe run`: which runtime, which isolation. */
  describe(): string;
  /** Notes to tell the user once (for example which images the host stands in for). */
  notices(): string[];
  openSession(run: RunContext): Promise<RunSession>;
  /**
   * Remove what runs that died without closing left behind, but for the runs
   * in `spare` (being resumed); returns what was removed.
   */
  sweep(spare?: ReadonlySet<string>): Promise<string[]>;
}

/** A group as the pool is told of it. */
export interface GroupRef {
  /** The group's name as written. */
  name: string;
  /** The members' task names as written. */
  members: readonly string[];
}

export interface Placement {
  /** The address the member is reached at by its siblings. */
  address: string;
  /** What `{{host:TASK}}` becomes in the group's members: a name that resolves to `address`, or the address. */
  hostName: string;
  /** The node (machine) it landed on, where the pool has several. */
  node?: string;
}

/** Events of a group's members, by attempt key (TaskLaunch.key: `<group>/<task>/<retry>`). */
/** When each released member's command started, by its key (epoch ms, the node's clock). */
export type StartTimes = ReadonlyMap<string, number>;

export interface GroupListener {
  placed(key: string, placement: Placement): void;
  /**
   * Not placed yet, and why, in the cluster scheduler's words (a pod the scheduler cannot fit: "0/3 nodes are
   * available: 3 Insufficient cpu"): shown as the member's SCHEDULING reason. Said again only when it changes.
   */
  unplaced?(key: string, reason: string): void;
  /** The member's sandbox is up and its command waits for the release. */
  ready(key: string): void;
  /** The attempt ended, once, however it ended (also after a failed place or prepare). */
  exited(key: string, outcome: MemberOutcome): void;
}

/** A member to place: the attempt key and the task it is an attempt of. */
export interface MemberRef {
  key: string;
  taskName: string;
  retryId: number;
  /** What the task asks for (absent or 0: nothing), for pools that place it where that is free (a cluster's allocation). */
  resources?: { cpu: number; gpu: number; memoryBytes: number; storageBytes?: number };
  /** Its resource's `platform` (pools with platforms: PoolCapabilities.platforms). */
  platform?: string;
  /** Its resource's `nodesExcluded`: nodes it must not be placed on (pools that place on named nodes). */
  nodesExcluded?: readonly string[];
  /** The task's image, for pools that must start something of it to place it (a Kubernetes pod is made with its image). */
  image?: string;
  /** `hostNetwork: true`: placed on the machine's own network, its address the machine's. */
  hostNetwork?: boolean;
  /**
   * The directories the attempt will be shown (its launch's `mounts`: output, inputs, checkpoints, volume
   * mounts), for pools that make a member's sandbox when they place it (a pod's volumes are fixed when it is
   * made, before its launch is known). Given where PoolCapabilities.sandboxAtPlacement and mounts say so.
   */
  mounts?: readonly TaskMount[];
}

/** How the engine goes on with a member it asks to prepare. */
export interface PrepareOptions {
  /**
   * The engine releases this member as soon as it is ready, unless it stops
   * it first (a group of one member with nothing to wait for: no data to
   * stage, no durable record before the start): the runtime may start the
   * command as the sandbox comes up, in one step instead of a second round
   * trip for the release. It still reports `ready` before any `exited`; the
   * engine's `release` of it afterwards changes nothing. A stop before the
   * `ready` may then find the command started a moment before (it ends it as
   * any stop does). A runtime may ignore it and wait for the release as usual.
   */
  releaseWhenReady?: boolean;
}

export interface GroupHandle {
  /**
   * Durable, recorded by the store as soon as it is known (container names,
   * a Slurm job id, a pod group): a restarted troupe re-attaches by it.
   */
  readonly id: string;
  /** Find places for these members' attempts (a new group, or a reschedule's fresh attempts). */
  place(members: readonly MemberRef[]): void;
  /** Bring up a placed member's sandbox for `launch` (its tokens resolved from every member's placement). */
  prepare(launch: TaskLaunch, options?: PrepareOptions): void;
  /**
   * Start the commands of these ready members together. Rejects, saying why,
   * when they could not be started; the members then end (exited) as the
   * runtime found them. Runtimes whose members start elsewhere (other nodes)
   * resolve to when each command started there, by its own clock (epoch ms):
   * the record's start times, and so the group's start skew, are those.
   */
  release(keys: readonly string[]): Promise<StartTimes | void>;
  /** Graceful signal, then a forced kill after `graceMs`; resolves when nothing of it is left. */
  stop(key: string, graceMs: number): Promise<void>;
  /**
   * OSMO's restart in place, where the runtime can: the released command is
   * stopped and the sandbox kept (files, /tmp, address) until the next
   * `release` of the same key. Resolves true once it waits for that release;
   * false when the attempt ended first (reported by `exited`, as usual).
   * Asked only where `canRestart(key)`; the others get fresh attempts.
   */
  restart(key: string, graceMs: number): Promise<boolean>;
  /** Whether the member `key` can restart in place (its sandbox outlives its command). */
  canRestart(key: string): boolean;
  /**
   * An attempt a previous troupe process released (with `keepTasks`): true
   * when it was found (its end is then reported by `exited`), false when its
   * fate cannot be known.
   */
  reattach(launch: TaskLaunch): Promise<boolean>;
  /** The attempt's complete output, from its start, followed until it ends. */
  logs(key: string): Readable;
  /** Give back what the group holds (addresses, an allocation) once nothing of it runs. Safe to call twice. */
  close(): Promise<void>;
}

export interface RunSession {
  /**
   * Pools that run images: makes `image` ready (checked, pulled as the pull
   * policy says), once per image and run; rejects with the TaskStartError
   * its tasks would fail with. Asked for every image as the run starts.
   */
  ensureImage?(image: string): Promise<void>;
  /** A new group, or (with `id`) one a previous troupe process started, by the id it recorded. */
  openGroup(group: GroupRef, listener: GroupListener, id?: string): GroupHandle;
  /** Remove everything this run created. Safe to call more than once. */
  close(): Promise<void>;
}
