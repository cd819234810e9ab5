/**
 * The server's config file (`troupe server --config FILE`, YAML or JSON):
 * the pools it offers. Without one there is a single `default` pool, this
 * machine, built from the command-line options. The format is documented in
 * `troupe server --help`, README.md and examples/server-config.yaml:
 *
 *   pools:
 *   - name: default
 *     runtime: host            # or container, or slurm (default: container when an engine answers)
 *     isolation: none          # host runtime: netns or none
 *     engine: podman           # container runtime: podman or docker
 *     pull: missing            # container runtime: when to pull images (missing, always, never)
 *     cpus: 8                  # capacity (default: this machine's)
 *     memory: 16Gi
 *     gpus: 0                  # at most the GPUs nvidia-smi lists (default: those)
 *     gpus_unchecked: true     # take gpus as given (GPUs nvidia-smi does not list)
 *     max_retries: 2           # OSMO's max_retry_per_task (default 0)
 *     max_parallel: 64         # tasks at once (default: the runtime's, engine/max-parallel.ts)
 *     start_timeout: 30m       # a task whose sandbox is not up by then fails FAILED_START_TIMEOUT (0: no limit)
 *     exit_actions: {RESCHEDULE: "137"}   # defaults after each task's own
 *     task_user: "1000:1000"   # host runtime, as root: who tasks run as (default nobody, 65534:65534)
 *     privileged_allowed: false  # whether tasks with privileged: true may run (as root)
 *     host_network_allowed: false  # whether tasks with hostNetwork: true may run on the machine's network
 *     allowed_mounts: [/data]  # host paths tasks' volumeMounts may show them (default: none)
 *     default_mounts: ["/datasets:/datasets"]  # mounts every task gets (SRC or SRC:DEST)
 *     data_store: s3://lab-data/troupe  # intermediate storage: tasks' outputs pass through it
 *     partition: main          # slurm: the partition, account and qos of the groups' jobs
 *     account: lab
 *     qos: normal
 *     shared_dir: /shared/troupe  # slurm: troupe's files on the cluster's shared file system
 *     listen_address: 10.0.0.1 # slurm: this machine's address the nodes reach
 *     spread: nodes            # slurm: a node per member (default), or pack
 */
import { readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import yaml from "js-yaml";
import { z } from "zod";
import {
  requestRuntime,
  resolveRequest,
  runtimeKind,
  runtimeOptionShape,
  unknownRuntimeKind,
  type ChosenRuntime,
  type RequestNaming,
  type RuntimeRequest,
} from "../drive/index.js";
import { TroupeError, UsageError } from "../errors/index.js";
import { parseStorageUrl } from "../model/index.js";
import { maxParallelFor } from "../engine/index.js";
import { compileExitActions } from "../plan/index.js";
import { checkVolumeMount, ExitActionsSchema, parseDuration, parseExitRanges, parseSize } from "../spec/index.js";
import type { Pool } from "../server/index.js";
import { poolGpus } from "./gpus.js";

const PoolConfig = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "lowercase letters, digits, - and _, at most 63"),
    // Checked against the registry (drive/registry.ts) below, naming the pool and the runtimes there are.
    runtime: z.string().optional(),
    cpus: z.number().int().positive().optional(),
    memory: z
      .string()
      .refine((v) => parseSize(v).ok, "a size such as 16Gi")
      .optional(),
    gpus: z.number().int().min(0).optional(),
    gpus_unchecked: z.boolean().optional(),
    max_retries: z.number().int().min(0).default(0),
    // Absent: the runtime's default (engine/max-parallel.ts: 64, on kubernetes 1000).
    max_parallel: z.number().int().min(1).optional(),
    // Absent: the engine's default (engine/start-deadline.ts: 30m); 0: no limit.
    start_timeout: z
      .union([z.string(), z.number()])
      .refine((v) => parseDuration(v).ok, "a duration such as 10m or 90s (0: no limit)")
      .optional(),
    exit_actions: ExitActionsSchema.refine(
      (actions) => Object.values(actions).every((v) => v === undefined || parseExitRanges(v).ok),
      'exit codes or ranges such as "1,3-5"',
    ).optional(),
    privileged_allowed: z.boolean().default(false),
    host_network_allowed: z.boolean().default(false),
    allowed_mounts: z.array(z.string().startsWith("/", "an absolute path")).default([]),
    default_mounts: z
      .array(z.string().refine((mount) => checkVolumeMount(mount).ok, "SRC or SRC:DEST, absolute paths without .."))
      .default([]),
    data_store: z
      .string()
      .refine((url) => parseStorageUrl(url).ok, "an object store's URL, s3://BUCKET/PREFIX")
      .optional(),
  })
  // Each runtime's own options (isolation, engine, task_user, ...): the registry's kinds say which and what they take.
  .extend(runtimeOptionShape() as Record<never, z.ZodType>)
  .strict()
  .superRefine((pool, context) => {
    if (pool.runtime !== undefined && !runtimeKind(pool.runtime))
      context.addIssue({ code: "custom", path: ["runtime"], message: `pool ${pool.name}: ${unknownRuntimeKind(pool.runtime)}` });
  });

const ServerConfig = z
  .object({ pools: z.array(PoolConfig).min(1) })
  .strict()
  .refine((c) => new Set(c.pools.map((p) => p.name)).size === c.pools.length, "pool names must differ");

/** A pool's config: its own fields, and its runtime's options by name (typed by their kind, in drive/kinds/). */
export type PoolConfig = z.output<typeof PoolConfig> & Readonly<Record<string, unknown>>;

/** Every field a pool may have (the help, README and examples/server-config.yaml document each: a test checks). */
export const POOL_FIELDS: readonly string[] = Object.keys(PoolConfig.shape);

/** The runtime fields of a pool's config, as a request to the registry; `naming` says them as the config's author wrote them. */
function poolRequest(config: PoolConfig, naming: RequestNaming): RuntimeRequest {
  const options = Object.fromEntries(Object.keys(runtimeOptionShape()).map((field) => [field, config[field]]));
  return { kind: config.runtime, options, naming: { ...naming, prefix: `pool ${config.name}: ` } };
}

/** How a config file's pools name their runtime and its options. */
const FIELD_NAMING: RequestNaming = { kind: (name) => `runtime ${name}`, option: (field) => field };

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
  // What the runtime's options say together (a runtime that does not take one of them).
  parsed.data.pools.forEach((pool, i) => {
    try {
      resolveRequest(poolRequest(pool, FIELD_NAMING));
    } catch (error) {
      throw new UsageError(`--config ${path}: pools.${i}: ${(error as Error).message}`);
    }
  });
  return parsed.data.pools;
}

/**
 * A pool of the server from its config, with its runtime chosen once for all
 * its runs (a container engine asked, and checked whether it can start
 * containers, once: not a `podman version` per run), and why it is not the
 * container runtime when that was chosen for it; a TroupeError naming the
 * pool when its runtime cannot be had. `naming`: how the pool's runtime
 * options were given (the default pool's come from flags).
 */
export async function openPool(config: PoolConfig, home: string, naming = FIELD_NAMING): Promise<{ pool: Pool; note?: string }> {
  const memory = config.memory ? parseSize(config.memory) : undefined;
  let chosen: ChosenRuntime;
  try {
    chosen = await requestRuntime(poolRequest(config, naming), { home }).settle({ images: new Set(), longLived: true });
  } catch (error) {
    if (!(error instanceof TroupeError) || error.message.startsWith(`pool ${config.name}: `)) throw error;
    throw new TroupeError(error.code, `pool ${config.name}: ${error.message}`, error.kind, error.hint);
  }
  // A cluster's capacity is its nodes' (read by the runtime's check); this machine's otherwise.
  const known = chosen.capacity;
  const gpu =
    known && config.gpus === undefined
      ? known.gpu
      : poolGpus(config.gpus, config.gpus_unchecked === true || known !== undefined, `pool ${config.name}: gpus`, "gpus_unchecked: true");
  const pool: Pool = {
    name: config.name,
    capacity: {
      cpu: config.cpus ?? known?.cpu ?? availableParallelism(),
      gpu,
      memoryBytes: memory?.ok ? memory.value : (known?.memoryBytes ?? totalmem()),
    },
    maxRetries: config.max_retries,
    maxParallel: maxParallelFor(chosen.backend.capabilities, config.max_parallel),
    startTimeoutMs: config.start_timeout === undefined ? undefined : (parseDuration(config.start_timeout) as { value: number }).value,
    exitActions: compileExitActions(config.exit_actions),
    privilegedAllowed: config.privileged_allowed,
    hostNetworkAllowed: config.host_network_allowed,
    allowedMounts: config.allowed_mounts,
    defaultMounts: config.default_mounts,
    dataStore: config.data_store,
    backend: chosen.backend,
  };
  return { pool, note: chosen.note };
}
