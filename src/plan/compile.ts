/**
 * plan/: a validated WorkflowSpec -> CompiledWorkflow. Pure: no I/O, no clock.
 * It trusts spec/ to have rejected invalid files and throws if one gets through.
 */
import {
  isForeignTaskRef,
  normalizeName,
  parseCount,
  parseDuration,
  parseSize,
  type ResourceSpec,
  type TaskSpec,
  type WorkflowSpec,
} from "../spec/index.js";
import { topologicalOrder } from "../util/graph.js";
import { compileExitActions } from "./exit-actions.js";
import { expandEnvironmentReferences, tokenize } from "./text.js";
import type {
  CompiledCheckpoint,
  CompiledGroup,
  CompiledInput,
  CompiledResources,
  CompiledTask,
  CompiledWorkflow,
  ResourceDemand,
  TokenizedText,
} from "./types.js";

interface DraftGroup {
  name: string;
  barrier: boolean;
  ignoreNonleadStatus: boolean;
  tasks: TaskSpec[];
}

export interface CompileOptions {
  /** Set in every task's environment over its own (`--set-env`); it takes part in `$(VAR)` expansion too. */
  env?: Readonly<Record<string, string>>;
}

export function compileWorkflow(spec: WorkflowSpec, options: CompileOptions = {}): CompiledWorkflow {
  const workflow = spec.workflow;
  const setEnv = options.env ?? {};
  const drafts: DraftGroup[] = workflow.groups
    ? workflow.groups.map((g) => ({
        name: g.name,
        barrier: g.barrier ?? true,
        ignoreNonleadStatus: g.ignoreNonleadStatus ?? true,
        tasks: g.tasks,
      }))
    : (workflow.tasks ?? []).map((t) => ({ name: `${t.name}-group`, barrier: true, ignoreNonleadStatus: true, tasks: [t] }));

  // Which draft group each task lives in, by normalised name.
  const groupOfTask = new Map<string, number>();
  drafts.forEach((g, i) => g.tasks.forEach((t) => groupOfTask.set(normalizeName(t.name), i)));

  // adjacency[from] lists the groups that take input from group `from`.
  const adjacency: number[][] = drafts.map(() => []);
  drafts.forEach((g, i) => {
    const sources: number[] = [];
    for (const task of g.tasks) {
      for (const input of task.inputs ?? []) {
        if (input.task === undefined || isForeignTaskRef(input.task)) continue;
        const from = groupOfTask.get(normalizeName(input.task));
        if (from === undefined || from === i) throw new Error(`input ${input.task} of ${task.name} was not validated`);
        if (!sources.includes(from)) sources.push(from);
      }
    }
    for (const from of sources) adjacency[from]?.push(i);
  });
  const order = topologicalOrder(adjacency);
  if (!order) throw new Error("the group graph has a cycle that validation did not report");
  const position = new Int32Array(drafts.length);
  order.forEach((draftIndex, pos) => (position[draftIndex] = pos));

  const upstream: number[][] = order.map(() => []);
  adjacency.forEach((targets, from) => targets.forEach((to) => upstream[position[to] as number]?.push(position[from] as number)));

  const resourceTable = workflow.resources ?? {};
  // Tasks share a handful of resource entries: resolve each once.
  const resolved = new Map<string, CompiledResources>();
  const resourcesOf = (name: string) => {
    let entry = resolved.get(name);
    if (!entry) resolved.set(name, (entry = resolveResources(name, resourceTable)));
    return entry;
  };
  const plainText = new Map<string, TokenizedText>();
  const groups: CompiledGroup[] = order.map((draftIndex, index) => {
    const draft = drafts[draftIndex] as DraftGroup;
    const explicitLead = draft.tasks.findIndex((t) => t.lead === true);
    const leadIndex = explicitLead >= 0 ? explicitLead : 0;
    const tasks = draft.tasks.map((t, i) =>
      compileTask(
        t,
        index,
        i === leadIndex,
        resourcesOf,
        (name) => position[groupOfTask.get(normalizeName(name)) as number] as number,
        setEnv,
        plainText,
      ),
    );
    return {
      index,
      name: draft.name,
      barrier: draft.barrier,
      ignoreNonleadStatus: draft.ignoreNonleadStatus,
      leadIndex,
      tasks,
      upstream: shared((upstream[index] ?? []).sort((a, b) => a - b)),
      downstream: shared((adjacency[draftIndex] ?? []).map((d) => position[d] as number).sort((a, b) => a - b)),
      demand: sumDemand(tasks),
    };
  });

  return {
    name: workflow.name,
    labels: workflow.labels ?? {},
    pool: workflow.pool,
    timeouts: {
      execMs: optionalDuration(workflow.timeout?.exec_timeout),
      queueMs: optionalDuration(workflow.timeout?.queue_timeout),
    },
    groups,
    taskCount: groups.reduce((n, g) => n + g.tasks.length, 0),
  };
}

function compileTask(
  task: TaskSpec,
  group: number,
  lead: boolean,
  resourcesOf: (name: string) => CompiledResources,
  groupOf: (taskName: string) => number,
  setEnv: Readonly<Record<string, string>>,
  plainText: Map<string, TokenizedText>,
): CompiledTask {
  const environment = { ...task.environment, ...setEnv };
  const inputNames = (task.inputs ?? []).map((i) => (i.task === undefined ? undefined : (i.task.split(":").pop() as string)));
  // Text without tokens (`true`, `python`) is one frozen array per distinct string, shared by every task that has it.
  const text = (value: string): TokenizedText => {
    const known = plainText.get(value);
    if (known) return known;
    const parts = tokenize(value, inputNames);
    if (parts.length === 1 && typeof parts[0] === "string") plainText.set(value, Object.freeze(parts));
    return parts;
  };
  const commandText = (value: string) => text(expandEnvironmentReferences(value, environment));
  const checkpoints = task.checkpoint === undefined ? [] : Array.isArray(task.checkpoint) ? task.checkpoint : [task.checkpoint];
  return {
    name: task.name,
    group,
    lead,
    image: task.image,
    command: task.command.map(commandText),
    args: shared((task.args ?? []).map(commandText)),
    // A task with no environment of its own and no --set-env shares the one empty record.
    environment:
      task.environment || Object.keys(setEnv).length > 0
        ? Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, text(v)]))
        : NO_ENTRIES,
    files: shared(
      (task.files ?? []).map((f) => ({
        path: f.path,
        source:
          f.localpath !== undefined
            ? { kind: "local", path: f.localpath }
            : f.base64
              ? { kind: "base64", data: f.contents ?? "" }
              : { kind: "text", contents: text(f.contents ?? "") },
      })),
    ),
    inputs: shared(
      (task.inputs ?? []).map((input): CompiledInput => {
        if (input.task === undefined) return { kind: "url", url: input.url ?? "", regex: input.regex };
        if (isForeignTaskRef(input.task)) {
          const colon = input.task.lastIndexOf(":");
          return { kind: "workflow-task", workflowId: input.task.slice(0, colon), task: input.task.slice(colon + 1) };
        }
        return { kind: "task", task: input.task, group: groupOf(input.task), regex: input.regex };
      }),
    ),
    outputs: shared((task.outputs ?? []).map((o) => ({ url: text(o.url), regex: o.regex }))),
    credentials: task.credentials ?? NO_ENTRIES,
    resources: resourcesOf(task.resource ?? "default"),
    exitActions: shared(compileExitActions(task.exitActions)),
    volumeMounts: shared(task.volumeMounts ?? []),
    checkpoints: shared(
      checkpoints.map((c): CompiledCheckpoint => ({
        path: text(c.path),
        url: text(c.url),
        frequencyMs: requiredDuration(c.frequency),
        regex: c.regex,
      })),
    ),
    privileged: task.privileged ?? false,
    hostNetwork: task.hostNetwork ?? false,
  };
}

/**
 * Most tasks have no args, files, inputs, outputs, mounts or exit actions: one frozen empty
 * list and record for all of them (100,000 tasks kept ten empty arrays each, about 30 MB).
 */
const NO_ITEMS: readonly never[] = Object.freeze([]);
const NO_ENTRIES: Readonly<Record<string, never>> = Object.freeze({});
const shared = <T>(items: readonly T[]): readonly T[] => (items.length === 0 ? NO_ITEMS : items);

function resolveResources(name: string, table: Record<string, ResourceSpec>): CompiledResources {
  const spec = table[name] ?? {};
  if (name !== "default" && !(name in table)) throw new Error(`resource ${name} was not validated`);
  const count = (v: string | number | undefined) => (v === undefined ? 0 : unwrap(parseCount(v)));
  const size = (v: string | number | undefined) => (v === undefined ? 0 : unwrap(parseSize(v)));
  return {
    name,
    cpu: count(spec.cpu),
    gpu: count(spec.gpu),
    memoryBytes: size(spec.memory),
    storageBytes: size(spec.storage),
    platform: spec.platform,
    nodesExcluded: spec.nodesExcluded ?? [],
  };
}

function sumDemand(tasks: readonly CompiledTask[]): ResourceDemand {
  const total: ResourceDemand = { cpu: 0, gpu: 0, memoryBytes: 0, storageBytes: 0 };
  for (const { resources: r } of tasks) {
    total.cpu += r.cpu;
    total.gpu += r.gpu;
    total.memoryBytes += r.memoryBytes;
    total.storageBytes += r.storageBytes;
  }
  return total;
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; reason: string }): T {
  if (!result.ok) throw new Error(`value was not validated: ${result.reason}`);
  return result.value;
}

function optionalDuration(value: string | number | undefined): number | undefined {
  return value === undefined ? undefined : requiredDuration(value);
}

function requiredDuration(value: string | number): number {
  return unwrap(parseDuration(value));
}
