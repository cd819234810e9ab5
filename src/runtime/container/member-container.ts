/**
 * What every member's container is given, wherever its engine runs (this
 * machine, a Slurm node): troupe-init as its entrypoint with the attempt's
 * control directory, its output writable and its inputs read-only at their
 * paths, its `files:` staged in the control directory and bound at theirs,
 * and its environment.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskLaunch } from "../types.js";
import type { BindMount } from "./bind-mounts.js";

/** troupe-init in the container: its entrypoint. */
export const INIT_IN_CONTAINER = "/.troupe/init";
/** The control directory in the container (native/init.c's CONTROL_DIR). */
const CONTROL_IN_CONTAINER = "/.troupe/ctl";

/** The member's mounts; its files are written into `controlDir` (which must exist) as they are staged. */
export function memberMounts(launch: TaskLaunch, init: string, controlDir: string): BindMount[] {
  const mounts: BindMount[] = [
    { source: init, target: INIT_IN_CONTAINER, readOnly: true },
    { source: controlDir, target: CONTROL_IN_CONTAINER, readOnly: false },
    { source: launch.outputDir, target: launch.outputDir, readOnly: false },
    ...launch.inputDirs.map((dir) => ({ source: dir, target: dir, readOnly: true })),
    // OSMO's data paths, checkpoint directories: the engine's (the engine also resolved the tokens to them).
    ...(launch.mounts ?? []).map((m) => ({ source: m.source, target: m.target, readOnly: m.readOnly })),
  ];
  launch.files.forEach((file, i) => {
    const staged = join(controlDir, `file.${i}`);
    writeFileSync(staged, file.contents, { mode: file.mode ?? 0o644 });
    mounts.push({ source: staged, target: file.path, readOnly: false });
  });
  return mounts;
}

/**
 * The member's environment: its own, and in a pool with GPUs, for a task
 * given none, NVIDIA_VISIBLE_DEVICES=void: NVIDIA's container hook (not CDI)
 * would otherwise follow the image's NVIDIA_VISIBLE_DEVICES=all (CUDA's
 * images set it) and give it every GPU.
 */
export function memberEnvironment(launch: TaskLaunch): Record<string, string> {
  return launch.gpuDevices?.length === 0 ? { NVIDIA_VISIBLE_DEVICES: "void", ...launch.env } : launch.env;
}
