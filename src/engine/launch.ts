/** Turning a compiled task into a runtime launch: tokens resolved, files as bytes. */
import { normalizeName } from "../spec/index.js";
import type { CompiledFile, CompiledTask, TokenizedText } from "../plan/index.js";
import type { TaskLaunch } from "../port/index.js";

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
}

export function buildLaunch(task: CompiledTask, place: LaunchPlace, ctx: TokenContext): TaskLaunch {
  return {
    key: place.key,
    taskName: task.name,
    groupName: place.groupName,
    retryId: place.retryId,
    image: task.image,
    argv: [...task.command, ...task.args].map((t) => resolveTokens(t, ctx)),
    env: Object.fromEntries(Object.entries(task.environment).map(([k, v]) => [k, resolveTokens(v, ctx)])),
    files: task.files.map((f) => ({ path: f.path, contents: fileBytes(f, ctx) })),
    outputDir: ctx.outputDir,
    inputDirs: [...ctx.inputDirs],
    address: place.address,
    hosts: place.hosts,
    logPath: place.logPath,
    resources: { cpu: task.resources.cpu, gpu: task.resources.gpu, memoryBytes: task.resources.memoryBytes },
    gpuDevices: place.gpuDevices && [...place.gpuDevices],
    privileged: task.privileged,
  };
}
