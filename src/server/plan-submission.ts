/**
 * Validating, rendering and planning a submitted spec: the part of a
 * submission that depends only on what was sent and on the pool's limits.
 * The server does it in worker threads (plan-worker.ts), away from the thread
 * where the engines run: a 10 MB spec takes seconds to validate, and neither
 * a running workflow's timers nor other users' requests wait for it.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { credentialUsesOf, type CredentialUses } from "../data/index.js";
import { findUnschedulable, type Capacity } from "../engine/index.js";
import {
  compileWorkflow,
  dataStoreRefusal,
  hostNetworkRefusal,
  platformRefusal,
  policyRefusals,
  taskDataRefusal,
  type CompiledWorkflow,
} from "../plan/index.js";
import { loadWorkflowSpec, type Diagnostic } from "../spec/index.js";
import { formatBytes } from "../util/units.js";
import { WorkerPool } from "../util/worker-pool.js";
import { refusal, type Refusal } from "./error-reply.js";
import type { Pool } from "./pool.js";

export interface PlanRequest {
  /** Who submitted it (the pool shares its workers between users). */
  user: string;
  spec: string;
  set: Record<string, string>;
  setString: Record<string, string>;
  /** Set in every task's environment (`--set-env`). */
  env?: Record<string, string>;
  pool: {
    name: string;
    capacity: Capacity;
    maxRetries: number;
    privilegedAllowed: boolean;
    hostNetworkAllowed?: boolean;
    /** Its runtime can put a task on the machine's own network (PoolCapabilities.hostNetwork). */
    hostNetwork?: boolean;
    /** Its runtime brings data into its tasks (PoolCapabilities.taskData; absent: it does). */
    taskData?: boolean;
    allowedMounts: readonly string[];
    /** Whether its tasks share troupe's disk (PoolCapabilities.sharedFileSystem), and its data store: how they pass data. */
    sharedFileSystem?: boolean;
    dataStore?: string;
    /** Its runtime's platforms (PoolCapabilities.platforms), where it has any. */
    platforms?: readonly string[];
  };
  maxTasks: number;
  /** Without it (a dry run) the answer has no plan: only its size. */
  wantPlan: boolean;
}

/** A dry run's plan as the web UI draws it: each group's tasks and the groups it waits for. */
export interface PlanShape {
  groups: { name: string; tasks: { name: string; lead: boolean }[]; upstream: string[] }[];
}

export type PlanReply =
  | { kind: "invalid"; diagnostics: Diagnostic[] }
  | Refusal
  | {
      kind: "planned";
      name: string;
      groups: number;
      tasks: number;
      plan?: CompiledWorkflow;
      rendered?: string;
      /** A dry run's: the tasks that have `credentials:` (checked against the submitter's by the run manager). */
      credentialUses?: CredentialUses;
      /** A dry run's: the plan's groups and their order. */
      shape?: PlanShape;
      /** The spec's warnings (fields with no effect yet, among others): the submitter is told of them. */
      warnings: Diagnostic[];
    };

/** What planning a submission needs of `pool` (sent to a worker thread: plain data). */
export function poolLimits(pool: Pool): PlanRequest["pool"] {
  const { name, capacity, maxRetries, privilegedAllowed, hostNetworkAllowed, allowedMounts, dataStore } = pool;
  const { hostNetwork, sharedFileSystem, taskData, platforms } = pool.backend.capabilities;
  return {
    name,
    capacity,
    maxRetries,
    privilegedAllowed,
    hostNetworkAllowed,
    allowedMounts,
    dataStore,
    sharedFileSystem,
    hostNetwork,
    taskData,
    ...(platforms ? { platforms: [...platforms] } : {}),
  };
}

export async function planSubmission(request: PlanRequest): Promise<PlanReply> {
  const { pool } = request;
  const loaded = await loadWorkflowSpec(request.spec, {
    variables: { set: request.set, setString: request.setString },
    maxRetries: pool.maxRetries,
  });
  if (!loaded.spec) return { kind: "invalid", diagnostics: loaded.diagnostics };
  const tasks = [...(loaded.spec.workflow.tasks ?? []), ...(loaded.spec.workflow.groups ?? []).flatMap((g) => g.tasks)];
  if (tasks.length > request.maxTasks)
    return refusal("usage", "E_TOO_MANY_TASKS", `the workflow has ${tasks.length} tasks; this server takes at most ${request.maxTasks}`);
  if (tasks.some((t) => t.files?.some((f) => f.localpath !== undefined)))
    return refusal(
      "usage",
      "E_LOCALPATH_NOT_INLINED",
      "localpath files must be inlined by the client before submitting (troupe workflow submit does)",
    );
  const plan = compileWorkflow(loaded.spec, { env: request.env });
  const refusals = policyRefusals(plan, pool, pool.name);
  if (refusals.length > 0) return refusal("forbidden", "E_POOL_POLICY", refusals.join("; "));
  const noData = taskDataRefusal(plan, pool.taskData !== false, `the pool ${pool.name}'s runtime`);
  if (noData !== undefined) return refusal("usage", "E_NOT_SUPPORTED", noData);
  const unshared = dataStoreRefusal(
    plan,
    { sharedFileSystem: pool.sharedFileSystem ?? true, dataStore: pool.dataStore },
    `the pool ${pool.name}`,
    "data_store: in the server's config",
  );
  if (unshared !== undefined) return refusal("usage", "E_DATA_STORE_REQUIRED", unshared);
  const noHostNetwork = hostNetworkRefusal(plan, pool.hostNetwork === true, `the pool ${pool.name}'s runtime`);
  if (noHostNetwork !== undefined) return refusal("forbidden", "E_POOL_POLICY", noHostNetwork);
  const noPlatform = platformRefusal(plan, pool.platforms, `the pool ${pool.name}`);
  if (noPlatform !== undefined) return refusal("usage", "E_PLATFORM", noPlatform);
  const unschedulable = findUnschedulable(plan, pool.capacity);
  if (unschedulable.length > 0) {
    const u = unschedulable[0]!;
    return refusal(
      "usage",
      "E_UNSCHEDULABLE",
      `group ${u.group} needs more than the pool ${pool.name} has (cpu ${u.demand.cpu} of ${u.capacity.cpu}, gpu ${u.demand.gpu} of ${u.capacity.gpu}, ` +
        `memory ${formatBytes(u.demand.memoryBytes)} of ${formatBytes(u.capacity.memoryBytes)})`,
    );
  }
  const reply: PlanReply = {
    kind: "planned",
    name: plan.name,
    groups: plan.groups.length,
    tasks: tasks.length,
    warnings: loaded.diagnostics.filter((d) => d.severity === "warning"),
  };
  // The spec after templating, as a YAML document (as OSMO keeps it): what `workflow spec` shows and a resubmission runs.
  return request.wantPlan
    ? { ...reply, plan, rendered: yaml.dump(loaded.spec, { lineWidth: -1, noRefs: true }) }
    : { ...reply, credentialUses: credentialUsesOf(plan), shape: shapeOf(plan) };
}

function shapeOf(plan: CompiledWorkflow): PlanShape {
  return {
    groups: plan.groups.map((g) => ({
      name: g.name,
      tasks: g.tasks.map((t) => ({ name: t.name, lead: t.lead })),
      upstream: g.upstream.map((u) => plan.groups[u]!.name),
    })),
  };
}

export type Planner = (request: PlanRequest) => Promise<PlanReply>;

/**
 * A planner on a pool of four worker threads: submissions are planned side by
 * side, the thread that asks stays free meanwhile, one user's submissions
 * hold at most two of the workers (the others' are not queued behind them),
 * and each worker's heap is bounded.
 */
export function workerPlanner(size = 4): Planner {
  // A 10 MB spec takes about 500 MB to plan: a bound well above, so that no submission takes the machine's memory.
  const pool = new WorkerPool<PlanRequest, PlanReply>({
    file: workerFile(),
    size,
    perKey: Math.max(1, Math.floor(size / 2)),
    resourceLimits: { maxOldGenerationSizeMb: 1536 },
  });
  return async (request) => {
    const outcome = await pool.run(request, { key: request.user });
    if (outcome.kind === "done") return outcome.result;
    throw new Error(
      outcome.kind === "timeout" ? "planning the workflow timed out" : `planning the workflow failed: ${outcome.error.message}`,
    );
  };
}

/** Next to this module (dist/server/), or, where this module was bundled into the CLI (dist/bundle/), in dist/server/. */
function workerFile(): URL {
  const here = new URL("./plan-worker.js", import.meta.url);
  return existsSync(fileURLToPath(here)) ? here : new URL("../server/plan-worker.js", import.meta.url);
}
