/**
 * The server's config file (`troupe server --config FILE`, YAML or JSON):
 * the pools it offers. Without one there is a single `default` pool, this
 * machine, built from the command-line options. The format is documented in
 * `troupe server --help`, README.md and examples/server-config.yaml:
 *
 *   pools:
 *   - name: default
 *     runtime: host            # or container (default: container when an engine answers)
 *     isolation: none          # host runtime: netns or none
 *     engine: podman           # container runtime: podman or docker
 *     cpus: 8                  # capacity (default: this machine's)
 *     memory: 16Gi
 *     gpus: 0                  # at most the GPUs nvidia-smi lists (default: those)
 *     gpus_unchecked: true     # take gpus as given (GPUs nvidia-smi does not list)
 *     max_retries: 2           # OSMO's max_retry_per_task (default 0)
 *     max_parallel: 64
 *     exit_actions: {RESCHEDULE: "137"}   # defaults after each task's own
 *     task_user: "1000:1000"   # host runtime, as root: who tasks run as (default nobody, 65534:65534)
 *     privileged_allowed: false  # whether tasks with privileged: true may run (as root)
 */
import { readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import yaml from "js-yaml";
import { z } from "zod";
import { UsageError } from "../errors/index.js";
import { compileExitActions } from "../plan/index.js";
import { ExitActionsSchema, parseExitRanges, parseSize } from "../spec/index.js";
import type { Pool } from "../server/index.js";
import { askEngine, chooseRuntime, type ChosenRuntime } from "./choose-runtime.js";
import { poolGpus } from "./gpus.js";
import { parseTaskUser } from "./task-user.js";

const PoolConfig = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "lowercase letters, digits, - and _, at most 63"),
    runtime: z.enum(["host", "container"]).optional(),
    isolation: z.enum(["netns", "none"]).optional(),
    engine: z.enum(["podman", "docker"]).optional(),
    cpus: z.number().int().positive().optional(),
    memory: z
      .string()
      .refine((v) => parseSize(v).ok, "a size such as 16Gi")
      .optional(),
    gpus: z.number().int().min(0).optional(),
    gpus_unchecked: z.boolean().optional(),
    max_retries: z.number().int().min(0).default(0),
    max_parallel: z.number().int().min(1).default(64),
    exit_actions: ExitActionsSchema.refine(
      (actions) => Object.values(actions).every((v) => v === undefined || parseExitRanges(v).ok),
      'exit codes or ranges such as "1,3-5"',
    ).optional(),
    task_user: z
      .string()
      .refine((v) => userOrError(v) === undefined, { error: (issue) => userOrError(issue.input as string) })
      .optional(),
    privileged_allowed: z.boolean().default(false),
  })
  .strict();

function userOrError(text: string): string | undefined {
  try {
    parseTaskUser(text, "task_user");
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const ServerConfig = z
  .object({ pools: z.array(PoolConfig).min(1) })
  .strict()
  .refine((c) => new Set(c.pools.map((p) => p.name)).size === c.pools.length, "pool names must differ");

export type PoolConfig = z.output<typeof PoolConfig>;

/** Every field a pool may have (the help, README and examples/server-config.yaml document each: a test checks). */
export const POOL_FIELDS: readonly string[] = Object.keys(PoolConfig.shape);

/** The pools a config file declares; a clear usage error naming the field when it is wrong. */
export function readServerConfig(path: string): PoolConfig[] {
  let raw: unknown;
  try {
    raw = yaml.load(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--config ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
  const parsed = ServerConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`--config ${path}: ${issue.path.map(String).join(".") || "the file"}: ${issue.message}`);
  }
  return parsed.data.pools;
}

/** A pool, and the choice of its runtime with the note that goes with it (the server says it at start). */
export interface ConfiguredPool extends Pool {
  /** A fresh runtime, with why it is not the container runtime when that was chosen for the pool; throws when the pool's runtime cannot be had. */
  chooseRuntime(): Promise<ChosenRuntime>;
}

/**
 * A pool of the server from its config. Runtimes are made per run; the
 * container engine is asked once, and checked once (whether it can start
 * containers), and its connection kept for every run (not a `podman version`
 * per run, and a pool without a runtime in its config does not switch
 * between container and host from run to run), asked again only after it
 * did not answer.
 */
export function poolFrom(config: PoolConfig): ConfiguredPool {
  const memory = config.memory ? parseSize(config.memory) : undefined;
  const choice = {
    runtime: config.runtime,
    isolation: config.isolation,
    engine: config.engine,
    taskUser: config.task_user === undefined ? undefined : parseTaskUser(config.task_user, "task_user"),
  };
  let engine: ReturnType<typeof askEngine>;
  const choose = () => {
    const asked = (engine ??= askEngine(choice));
    // A failed ask is reported by chooseRuntime; the next run of the pool asks again.
    asked?.catch(() => {
      if (engine === asked) engine = undefined;
    });
    return chooseRuntime(choice, new Set(), asked, true);
  };
  const gpu = poolGpus(config.gpus, config.gpus_unchecked === true, `pool ${config.name}: gpus`, "gpus_unchecked: true");
  return {
    name: config.name,
    capacity: {
      cpu: config.cpus ?? availableParallelism(),
      gpu,
      memoryBytes: memory?.ok ? memory.value : totalmem(),
    },
    maxRetries: config.max_retries,
    maxParallel: config.max_parallel,
    exitActions: compileExitActions(config.exit_actions),
    privilegedAllowed: config.privileged_allowed,
    chooseRuntime: choose,
    runtime: async () => (await choose()).runtime,
  };
}
