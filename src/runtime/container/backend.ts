/**
 * What the container runtime asks of an engine, whichever way it is spoken
 * to: podman through its CLI (cli-backend.ts: podman has no daemon, and one
 * `podman run` per task is what its users run), docker through the Docker
 * Engine API (api-backend.ts; podman's `system service` serves it too).
 */
import type { RegistryAuth } from "../../port/index.js";
import type { BindMount } from "./bind-mounts.js";
import type { IsolationRule } from "./network-isolation.js";

/** troupe's container networks are /24s of 10.214.0.0/16 (podman's and docker's defaults live elsewhere), kept apart from each other. */
export const NETWORK_POOL = { prefix: "10.214", cidr: "10.214.0.0/16" } as const;

/** The attempt's file (in ContainerSpec.hostDir) of variables holding secrets, for engines that take them from one; removed once the container is up. */
export const SECRET_ENV_FILE = "secret.env";

export interface ContainerSpec {
  name: string;
  image: string;
  entrypoint: string[];
  command: string[];
  env: Record<string, string>;
  hostname: string;
  labels: Record<string, string>;
  /** At the same paths as on the host, any characters in them (bind-mounts.ts). */
  mounts: BindMount[];
  network: { name: string; ip: string; aliases: string[] };
  /** Name -> address lines for the container's /etc/hosts (where the network has no DNS, or the container's own). */
  extraHosts: Record<string, string>;
  /** The container's resolver, when troupe's name server answers its group's names (not the engine's). */
  dns?: { servers: string[]; search: string[] };
  cpus?: number;
  memoryBytes?: number;
  /** The machine's GPUs (indices) the container gets; none: no GPU. */
  gpuDevices?: readonly number[];
  /** A privileged task (its pool allowed it): the engine's --privileged, every capability and device. */
  privileged?: boolean;
  /** The size of its /dev/shm (the engine's default, 64 MB, where undefined). */
  shmBytes?: number;
  /**
   * An owner's socket passed into the container as fd 3 (podman's --preserve-fds): the engine's client must be
   * started with it there, and troupe-init told of it (--owner-fd=3). A Slurm step's helper (node-container.ts).
   */
  ownerSocket?: boolean;
  /**
   * A directory of troupe's for this attempt on the host, where the engine's
   * client runs (podman 4's conmon writes an `oom` file into its working
   * directory when the container is killed for memory: not the user's).
   */
  hostDir: string;
  /**
   * Secret values to mask in the container's log and live output (its
   * credentials'); environment variables holding one are not put on an
   * engine's command line (podman: an --env-file of the attempt's, 0600).
   */
  secrets?: readonly string[];
}

/**
 * The CDI device kind of the machine's GPUs: a GPU given to a container is
 * the CDI device `KIND=INDEX` (nvidia-ctk cdi generate writes nvidia.com/gpu;
 * TROUPE_GPU_CDI_KIND for others, such as amd.com/gpu).
 */
export function gpuCdiKind(): string {
  return process.env.TROUPE_GPU_CDI_KIND || "nvidia.com/gpu";
}

/**
 * Why `image` cannot be given to an engine, or undefined when it can: one
 * that begins with "-" would be read as an option by a CLI (`podman run
 * --volume=/:/host ...`), and no image reference has spaces or control
 * characters. The spec's validation checks references fully; this is the
 * runtime's own guard, whatever reaches it.
 */
export function imageRefusal(image: string): string | undefined {
  if (image.length === 0) return "an empty image reference";
  if (image.startsWith("-")) return `${JSON.stringify(image)} is not an image reference (it begins with "-")`;
  if (/[\s\x00-\x1f\x7f]/.test(image)) return `${JSON.stringify(image)} is not an image reference (spaces or control characters)`;
  return undefined;
}

/** A container started by a backend. */
export interface StartedContainer {
  /**
   * Resolves when the container has ended and its whole output is in the log:
   * its exit code, or `error` when the engine could not run it at all.
   */
  readonly ended: Promise<{ code: number; error?: string }>;
  /** What must be in place, besides the container, before its command may start (the network's isolation); rejects with why not. */
  readonly ready?: Promise<void>;
  /** Graceful stop (SIGTERM to the container's PID 1, which passes it on), then a kill after `graceMs`. */
  stop(graceMs: number): Promise<void>;
  /** At once. */
  kill(): Promise<void>;
}

export interface OwnedResources {
  containers: Array<{ id: string; labels: Record<string, string> }>;
  networks: Array<{ name: string; labels: Record<string, string> }>;
}

/** What troupe-init says when it is given no command (native/init.c): the engine check's sign that a container started. */
export const INIT_WITHOUT_COMMAND = "troupe-init: no command given";

/**
 * The engine check's try (engine-check.ts): whether a tiny container of
 * troupe-init started, and otherwise the engine's reason; undefined when
 * the engine did not answer in time (nothing can be said).
 */
export type StartTry = { started: boolean; reason: string } | undefined;

export interface ContainerBackend {
  readonly engine: "podman" | "docker";
  /** For the first line of a run. */
  describe(): string;
  /**
   * Starts one tiny container, troupe-init (`init`) given no command, as
   * tasks' are started, to learn whether this engine can start containers
   * at all (engine-check.ts); `dir` is an empty directory of troupe's for it.
   */
  tryStart(dir: string, init: string, timeoutMs: number): Promise<StartTry>;
  /** Whether the engine's bridges and veths are on this machine (so troupe can isolate bridge ports). */
  readonly local: boolean;
  /**
   * Whether the engine's name server can answer a network's containers by
   * their aliases. Not through podman's CLI: netavark starts aardvark-dns
   * from the `podman run` of a network's first container, and it keeps that
   * task's output open (its log, the live view's pipe) for as long as it runs.
   */
  readonly engineDns: boolean;
  hasImage(image: string): Promise<boolean>;
  /** Rejects with the engine's reason; `signal` gives up (the run has ended). */
  /** `auth`: the registry login this pull uses (never on a command line others may read, never logged). */
  pull(image: string, signal?: AbortSignal, auth?: RegistryAuth): Promise<void>;
  /** With `dns`, the engine's name server answers the network's containers by their aliases. */
  createNetwork(name: string, subnet: string, gateway: string, labels: Record<string, string>, options?: { dns?: boolean }): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  /** Removes the network only if no container is on it; resolves to whether it did. */
  removeIdleNetwork(name: string): Promise<boolean>;
  /** Whether `start` can keep a container's attempt alive past troupe (see `keepDir`). */
  readonly keepsContainers: boolean;
  /**
   * Creates and starts the container; output goes to `logPath` (and `onOutput`,
   * live). With `keepDir` (where `keepsContainers`), the attempt outlives troupe
   * under a keeper that records its exit code there (runtime/kept-task.ts).
   */
  start(spec: ContainerSpec, logPath: string, onOutput?: (chunk: Buffer) => void, keepDir?: string): StartedContainer;
  /** Stops a container by name (one troupe did not start): SIGTERM, SIGKILL after `graceMs` (0: at once). */
  stopContainer(name: string, graceMs: number): Promise<void>;
  /**
   * A container an earlier troupe process started, followed to its end by
   * the engine itself (API engines keep containers and their logs): its log
   * completed from what `logPath` already has; undefined when the engine does
   * not know it. Backends whose attempts are kept by keepers (the podman CLI)
   * have none: a keeper's record says how it ended.
   */
  reattach?(name: string, logPath: string): Promise<StartedContainer | undefined>;
  /**
   * The names of every container the engine knows; undefined when it did not
   * answer. For kept attempts whose keepers live on (runtime/kept-task.ts): a
   * `podman run` whose container is gone would wait for ever.
   */
  containerNames?(): Promise<Set<string> | undefined>;
  /**
   * Containers and networks that carry the label `key`. With `containersIf`,
   * the networks are listed first and the containers only when one of those
   * networks passes it (none otherwise).
   */
  owned(key: string, containersIf?: (network: { labels: Record<string, string> }) => boolean): Promise<OwnedResources>;
  removeContainer(id: string): Promise<void>;
  /**
   * Backends that keep networks apart with rules of their own (the podman
   * CLI as root): every such rule on the machine, and their removal, for a
   * sweep to remove those whose network is gone.
   */
  isolationRules?(): Promise<IsolationRule[]>;
  removeIsolationRules?(rules: readonly IsolationRule[]): Promise<void>;
  close(): Promise<void>;
}
