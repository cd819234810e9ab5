/** What a runtime is given to run: one task attempt, and the run it belongs to. */
import type { RegistryAuthority } from "./credentials.js";

/**
 * A directory of this machine's (of the node's, on a cluster) that the task
 * sees at another path: its output and inputs at OSMO's paths
 * (model/task-paths.ts), its checkpoint directories, the host paths of its
 * `volumeMounts`. Only pools with `PoolCapabilities.mounts` are given any.
 */
export interface TaskMount {
  /** The directory here (made before the launch is prepared). */
  source: string;
  /** Where the task sees it: an absolute path. */
  target: string;
  readOnly: boolean;
  /**
   * A directory troupe made for this attempt (a checkpoint's): the runtime
   * gives it to the task's user. Otherwise a host path the pool allows
   * (`volumeMounts`), mounted as it is.
   */
  made?: boolean;
}

/** One task attempt, with every token already resolved. */
export interface TaskLaunch {
  /** Stable key of this attempt, unique within the run: `<group>/<task>/<retry>`. */
  key: string;
  taskName: string;
  groupName: string;
  retryId: number;
  image: string;
  argv: string[];
  env: Record<string, string>;
  /** `files:`, and the files of `credentials: {NAME: /dir}` (with `mode` 0400: the task's user's alone). */
  files: Array<{ path: string; contents: Buffer; mode?: number }>;
  /**
   * Secret values of the credentials the task was given (`credentials:`):
   * every runtime masks them (util/secret-mask.ts) in what it writes to
   * `logPath` and gives the live view. Never recorded.
   */
  secrets?: readonly string[];
  /** Fresh directory for `{{output}}`. */
  outputDir: string;
  /** Upstream outputs, by input position (`{{input:N}}`); mounted read-only where possible. */
  inputDirs: string[];
  /** Directories shown at paths of their own (TaskMount), after the output and inputs at their own paths. */
  mounts?: TaskMount[];
  /** This task's address, as its placement gave it. */
  address: string;
  /** The group's members (task names as written) and their addresses: the names the runtime serves them by. */
  hosts: Record<string, string>;
  /** Where the attempt's complete stdout+stderr is kept on this machine. */
  logPath: string;
  /** What the task asked for (absent or 0: no limit); runtimes that can enforce limits do. */
  resources?: { cpu: number; gpu: number; memoryBytes: number };
  /**
   * Which of the machine's GPUs (their indices) the task has, one for each it
   * asked for, none shared with another running task; runtimes give it those
   * and no others (host: CUDA_VISIBLE_DEVICES; containers: those devices).
   * Undefined where the pool has no GPUs or places GPUs itself.
   */
  gpuDevices?: number[];
  /**
   * `privileged: true`, which the pool allowed (troupe refuses the workflow
   * otherwise): the task runs as root with the capabilities root has. Any
   * other task runs unprivileged.
   */
  privileged?: boolean;
  /**
   * `hostNetwork: true`, which the pool allowed: the task runs on the
   * machine's own network (no network namespace of its own), reached at the
   * machine's address (its `address`).
   */
  hostNetwork?: boolean;
}

export interface OutputSink {
  /** Live output of a task attempt (the log at `logPath` gets it regardless). */
  (launch: TaskLaunch, chunk: Buffer): void;
}

export interface RunContext {
  runId: string;
  /** Directory for this run's data on this machine (outputs, logs, sandboxes). */
  dataDir: string;
  onOutput?: OutputSink;
  /**
   * Tasks must outlive this process (the server's: a restart re-attaches
   * them). Pools whose tasks cannot outlive troupe ignore it.
   */
  keepTasks?: boolean;
  /**
   * The run was started by an earlier troupe process (a server resuming it):
   * what that process left of it (networks, containers) goes when it ends.
   */
  resumed?: boolean;
  /** Pools that pull images: the registry login each image's pull uses, if any (the run owner's REGISTRY credentials). */
  registryAuth?: RegistryAuthority;
}
