/**
 * `troupe run`'s runtime flags (`--runtime`, and each runtime's own:
 * `--isolation`, `--engine`, ...) as a request to the runtime registry
 * (drive/choose.ts), with TROUPE_RUNTIME as the default kind.
 */
import { requestRuntime, runtimeOptionShape, type RequestNaming, type RuntimeChoice } from "../drive/index.js";
import { troupeHome } from "./home.js";

/** The flags, as commander gives them (camelCase: `--task-user` is `taskUser`). */
export interface RuntimeFlags {
  runtime?: string;
  isolation?: string;
  engine?: string;
  pull?: string;
  shmSize?: string;
  taskUser?: string;
  partition?: string;
  account?: string;
  qos?: string;
  sharedDir?: string;
  listenAddress?: string;
  spread?: string;
  nodeEngine?: string;
  batchJobs?: boolean;
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  podAnnotations?: string[];
  gangScheduler?: string;
  gangQueue?: string;
  schedulerName?: string;
  dataVolume?: string;
  dataVolumePath?: string;
  nodeSelector?: string[];
  priorityClass?: string;
  podTemplate?: string;
  tolerations?: string[];
  platforms?: string;
  defaultPlatform?: string;
}

export const FLAG_NAMING: RequestNaming = {
  kind: (name) => `--runtime ${name}`,
  option: (field) => `--${field.replaceAll("_", "-")}`,
};

/** A pool option's flag value: `task_user` is `--task-user`, which commander calls `taskUser`. */
export function flagValues(flags: object): Record<string, unknown> {
  const values = flags as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(runtimeOptionShape()).map((field) => [field, values[field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())]]),
  );
}

/**
 * Checks the flags (a UsageError, exit 2, when they are wrong) and starts
 * asking whether each candidate runtime can run here (a container engine:
 * a podman process, tens of milliseconds; the first time, a tiny container),
 * so that the answer comes while the workflow file is read.
 */
export function askRuntime(flags: RuntimeFlags): RuntimeChoice {
  const fromEnv = process.env.TROUPE_RUNTIME;
  return requestRuntime(
    {
      kind: flags.runtime,
      fallback: fromEnv === undefined ? undefined : { kind: fromEnv, where: `TROUPE_RUNTIME=${fromEnv}` },
      options: flagValues(flags),
      naming: FLAG_NAMING,
    },
    { home: troupeHome() },
  );
}
