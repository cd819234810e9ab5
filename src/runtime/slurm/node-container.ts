/**
 * A Slurm member as a podman container on its node (a pool's `node_engine:
 * podman`), with the container runtime's semantics: its image (pulled on the
 * node by the helper, where podman's storage is), troupe-init as its
 * entrypoint holding the command until "go", its control directory, output,
 * inputs (read-only) and `files:` as the container runtime mounts them
 * (container/member-container.ts), `podman run`'s arguments as the container
 * runtime builds them (container/podman-run.ts). What differs, and why:
 * - the node's network (`--network host`: a step's podman lands in its node's
 *   network namespace), since `{{host:X}}` is the node's address; its hosts
 *   file names the group's members and the node;
 * - the host name is the node's, as in the node's sandbox (node-sandbox.ts);
 * - GPUs are Slurm's: the step's, as CDI devices, and Slurm's variables;
 * - the control directory is on the shared file system, but the helper writes
 *   "go" there and reads `ready` and the verdict on the node (inotify sees
 *   only the node's own writes; troupe checks the verdict's nonce);
 * - the container is owned by the helper (troupe-init's --owner-fd, fd 3 of
 *   `podman run`): conmon leaves the step, so a helper Slurm killed outright
 *   (SIGKILL after its KillWait, with no time to remove the container) still
 *   takes the container with it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RegistryAuth } from "../../port/index.js";
import type { TaskLaunch } from "../types.js";
import { podmanAuthFile } from "../container/registry-login.js";
import type { ContainerSpec } from "../container/backend.js";
import { INIT_IN_CONTAINER, memberEnvironment, memberMounts } from "../container/member-container.js";
import { podmanRunArguments } from "../container/podman-run.js";
import { memberName } from "../member-names.js";
import { passedGpuVariables, stepGpus, type NodePlace } from "./node-sandbox.js";

/** The container's fd of its owner's socket: the helper starts `podman run` with the socket there. */
export const OWNER_FD = 3;

/** What the helper is sent to run the member's container. */
export interface NodeContainer {
  /** podman and its arguments (`podman run ...`), run in `controlDir` (conmon's files land there). */
  command: string[];
  name: string;
  controlDir: string;
  image: string;
  /** The registry login for its pull (stagePullAuth), which the helper removes once it has pulled. */
  authFile?: string;
}

/**
 * The run owner's registry login for a member's image, as podman's authfile, 0600 in the member's directory on
 * the shared file system (never its control directory, which the container mounts, nor a command line).
 */
export function stagePullAuth(dir: string, auth: RegistryAuth): string {
  const file = join(dir, "pull-auth.json");
  writeFileSync(file, podmanAuthFile(auth), { mode: 0o600 });
  return file;
}

/** What every member's container of a pool shares. */
export interface NodeContainerSite {
  /** troupe-init on the shared file system. */
  init: string;
  /** What its containers' names begin with (`troupe-HOME-RUN`): unique across homes and runs on a node's podman. */
  prefix: string;
  labels: Record<string, string>;
}

/** A member's control directory, in its directory on the shared file system. */
export function controlDirOf(memberDir: string): string {
  return join(memberDir, "ctl");
}

/** Stages the member's control directory and files in `dir` and returns the container the helper runs. */
export function stageNodeContainer(launch: TaskLaunch, place: NodePlace, dir: string, site: NodeContainerSite): NodeContainer {
  const controlDir = controlDirOf(dir);
  mkdirSync(controlDir, { recursive: true });
  mkdirSync(launch.outputDir, { recursive: true });
  const extraHosts: Record<string, string> = { [place.node]: launch.address };
  for (const [task, address] of Object.entries(launch.hosts)) {
    extraHosts[task] = address;
    extraHosts[memberName(launch.groupName, task)] = address;
  }
  const gpus = stepGpus(place.gpuEnv);
  const spec: ContainerSpec = {
    name: `${site.prefix}-${launch.taskName}-${launch.retryId}`.replace(/[^a-zA-Z0-9_.-]/g, "-"),
    image: launch.image,
    entrypoint: [INIT_IN_CONTAINER, `--owner-fd=${OWNER_FD}`, "--"],
    command: launch.argv,
    env: { ...passedGpuVariables(place.gpuEnv), ...memberEnvironment(launch) },
    hostname: place.node,
    labels: { ...site.labels, "troupe.task": launch.key },
    mounts: memberMounts(launch, site.init, controlDir),
    network: { name: "host", ip: "", aliases: [] },
    extraHosts,
    cpus: launch.resources?.cpu || undefined,
    memoryBytes: launch.resources?.memoryBytes || undefined,
    gpuDevices: gpus.length > 0 ? gpus : undefined,
    privileged: launch.privileged === true,
    hostDir: controlDir,
    ownerSocket: true,
  };
  // podman 4 on the nodes: the container writes to the task's log itself (--log-driver passthrough).
  return { command: ["podman", ...podmanRunArguments(spec, true)], name: spec.name, controlDir, image: launch.image };
}
