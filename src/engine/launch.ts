/** Turning a compiled task into a runtime launch: tokens resolved, files as bytes. */
import { normalizeName } from "../spec/index.js";
import type { CompiledFile, CompiledTask, TokenizedText } from "../plan/index.js";
import type { TaskLaunch, TaskMount } from "../port/index.js";

/** What the tokens of a task attempt become: its paths as the task sees them (its pool's PoolCapabilities.dataPaths). */
export interface TokenContext {
  workflowId: string;
  outputDir: string;
  inputDirs: readonly string[];
  /** Addresses of the group's members by normalised task name. */
  hosts: ReadonlyMap<string, string>;
}

export function resolveTokens(text: TokenizedText, ctx: TokenContext): string {
  let out = "";
  for (const part of text) {
    if (typeof part === "string") {
      out += part;
      continue;
    }
    switch (part.kind) {
      case "output":
        out += ctx.outputDir;
        break;
      case "workflow_id":
        out += ctx.workflowId;
        break;
      case "host": {
        const address = ctx.hosts.get(normalizeName(part.task));
        if (address === undefined) throw new Error(`{{host:${part.task}}} has no address (validation should have caught it)`);
        out += address;
        break;
      }
      case "input": {
        const index = "index" in part ? part.index : -1;
        const dir = ctx.inputDirs[index];
        if (dir === undefined) throw new Error(`{{input:${index}}} has no directory (validation should have caught it)`);
        out += dir;
        break;
      }
    }
  }
  return out;
}

function fileBytes(file: CompiledFile, ctx: TokenContext): Buffer {
  switch (file.source.kind) {
    case "text":
      return Buffer.from(resolveTokens(file.source.contents, ctx), "utf8");
    case "base64":
      return Buffer.from(file.source.data, "base64");
    case "local":
      throw new Error(`file ${file.path}: localpath files must be inlined before a run (spec inlineLocalFiles)`);
  }
}

export interface LaunchPlace {
  key: string;
  groupName: string;
  retryId: number;
  address: string;
  hosts: Record<string, string>;
  logPath: string;
  /** Which of the pool's GPUs the task has (as many as it asked for); undefined where the pool has none. */
  gpuDevices: readonly number[] | undefined;
  /** The attempt's output and input directories on this machine (TaskLaunch.outputDir, inputDirs). */
  outputDir: string;
  inputDirs: readonly string[];
  /** Where the task sees them, and any other directory, when not at their own paths. */
  mounts: readonly TaskMount[];
}

/**
 * What every task is told of itself, in its environment (its own
 * `environment` wins): which run, task and attempt it is. A task's data paths
 * need not name its attempt (OSMO's /osmo/data/output does not), and a
 * rescheduled task may want to know it is one.
 */
function attemptVariables(workflowId: string, taskName: string, retryId: number): Record<string, string> {
  return { TROUPE_WORKFLOW_ID: workflowId, TROUPE_TASK: taskName, TROUPE_RETRY_ID: String(retryId) };
}

export function buildLaunch(task: CompiledTask, place: LaunchPlace, ctx: TokenContext): TaskLaunch {
  return {
    key: place.key,
    taskName: task.name,
    groupName: place.groupName,
    retryId: place.retryId,
    image: task.image,
    argv: [...task.command, ...task.args].map((t) => resolveTokens(t, ctx)),
    env: {
      ...attemptVariables(ctx.workflowId, task.name, place.retryId),
      ...Object.fromEntries(Object.entries(task.environment).map(([k, v]) => [k, resolveTokens(v, ctx)])),
    },
    files: task.files.map((f) => ({ path: f.path, contents: fileBytes(f, ctx) })),
    outputDir: place.outputDir,
    inputDirs: [...place.inputDirs],
    ...(place.mounts.length > 0 ? { mounts: place.mounts.map((m) => ({ ...m })) } : {}),
    address: place.address,
    hosts: place.hosts,
    logPath: place.logPath,
    resources: { cpu: task.resources.cpu, gpu: task.resources.gpu, memoryBytes: task.resources.memoryBytes },
    gpuDevices: place.gpuDevices && [...place.gpuDevices],
    privileged: task.privileged,
    ...(task.hostNetwork ? { hostNetwork: true } : {}),
  };
}
