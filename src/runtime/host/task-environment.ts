/**
 * What a host sandbox's command is given besides its files: its environment,
 * and what the run says of the images the sandbox stands in for. Shared by
 * the host runtime and the Slurm runtime, whose nodes run the same sandbox.
 */
import type { TaskLaunch } from "../types.js";
import type { TaskUser } from "./sandbox.js";

const BASE_ENV_KEYS = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER"];

/**
 * What a task's process sees: the base environment, the GPUs troupe gave it
 * (CUDA's and NVIDIA's variables, for CUDA programs and NVIDIA's container
 * tools alike; where the pool has GPUs, a task that asked for none sees
 * none; CUDA numbering them in PCI order, as nvidia-smi and CDI do), what
 * the pool adds (`placed`: a cluster's GPU variables, as it set them for the
 * member), then the task's own `environment`, which wins.
 */
export function taskEnvironment(launch: TaskLaunch, user?: TaskUser, placed: Record<string, string> = {}): Record<string, string> {
  const env = baseEnvironment();
  if (user) {
    // Not root's: the task's user has no home of its own on this host; its /tmp is private and writable.
    env.HOME = "/tmp";
    delete env.USER;
  }
  if (launch.gpuDevices !== undefined) {
    const gpus = launch.gpuDevices.join(",");
    Object.assign(env, { CUDA_DEVICE_ORDER: "PCI_BUS_ID", CUDA_VISIBLE_DEVICES: gpus, NVIDIA_VISIBLE_DEVICES: gpus || "void" });
  }
  return { ...env, ...placed, ...launch.env };
}

function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of BASE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}

/** The run's note that a sandbox stands in for the workflow's images: `who` runs commands with `whose` tools instead. */
export function imagesStoodInFor(who: string, images: Iterable<string>, whose: string): string {
  return `${who} stands in for the images ${[...images].join(", ")}: commands run with ${whose}`;
}
