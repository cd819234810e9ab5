/**
 * The Slurm runtime's entry: a cluster reached through its commands on this
 * (login) node. The check asks sinfo for the partition's nodes (the pool's
 * capacity, so that a group that can never fit is refused at plan time) and
 * finds the address of this node that the nodes reach, where the member
 * helpers connect.
 */
import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { TroupeError } from "../../errors/index.js";
import {
  clusterCapacity,
  groupJob,
  localAddressToward,
  partitionNodes,
  SlurmPool,
  type SlurmNode,
  type TaskUser,
} from "../../runtime/index.js";
import { onPath } from "../../util/executables.js";
import { defineRuntimeKind } from "../kind.js";
import { readTaskUser, taskUserOption } from "./task-user.js";

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - (at most 64)");

const SlurmOptions = z.object({
  partition: name.optional(),
  account: name.optional(),
  qos: name.optional(),
  shared_dir: z
    .string()
    .refine((dir) => dir.startsWith("/"), "an absolute path of the cluster's shared file system")
    .optional(),
  listen_address: z
    .string()
    .refine((address) => isIP(address) !== 0, "an IP address of this machine that the nodes reach")
    .optional(),
  spread: z.enum(["nodes", "pack"]).optional(),
  /** The nodes have podman: members run in containers of their images there (default: troupe's host sandbox). */
  node_engine: z.enum(["podman"]).optional(),
  /**
   * Every group a batch job, as a server's are (they must outlive it), also for `troupe run`, whose groups are
   * otherwise interactive allocations (placed at once): for sites that refuse salloc from their login nodes.
   */
  batch_jobs: z.boolean().optional(),
  /** Who tasks run as in their sandboxes when jobs run as root (default nobody). */
  task_user: taskUserOption,
});

interface Cluster {
  nodes: SlurmNode[];
  listenAddress: string;
}

function unavailable(message: string, hint?: string): { ok: false; error: TroupeError; why: string } {
  return { ok: false, error: new TroupeError("E_SLURM_UNAVAILABLE", `the slurm runtime: ${message}`, "usage", hint), why: message };
}

async function addressOf(node: SlurmNode): Promise<string> {
  return isIP(node.address) ? node.address : (await lookup(node.address)).address;
}

export const slurmKind = defineRuntimeKind({
  name: "slurm",
  summary:
    "a Slurm cluster: each group one job (an allocation, or a batch job where tasks outlive troupe), its members on the cluster's nodes",
  options: SlurmOptions,
  impliedBy: ["partition", "account", "qos", "shared_dir", "listen_address", "spread", "node_engine", "batch_jobs"],
  automatic: false,
  async check(options) {
    if (!onPath("sbatch") || !onPath("sinfo"))
      return unavailable("sbatch and sinfo are not on PATH", "run troupe on a login node of the cluster (where sbatch works)");
    let nodes: SlurmNode[];
    try {
      nodes = await partitionNodes(process.env, options.partition);
    } catch (error) {
      return unavailable(`sinfo failed: ${(error as Error).message}`, "check that sinfo answers here (SLURM_CONF, the controller)");
    }
    if (nodes.length === 0)
      return unavailable(options.partition ? `partition ${options.partition} has no nodes (sinfo)` : "sinfo lists no nodes");
    let listenAddress: string;
    try {
      listenAddress = options.listen_address ?? (await localAddressToward(await addressOf(nodes[0]!)));
    } catch (error) {
      return unavailable(
        `cannot find this machine's address toward node ${nodes[0]!.name}: ${(error as Error).message}`,
        "give --listen-address (a pool's listen_address): an address of this machine the nodes reach",
      );
    }
    return { ok: true, ready: { nodes, listenAddress } satisfies Cluster };
  },
  capacity: ({ nodes }) => clusterCapacity(nodes),
  placeGroup: (options, { nodes }, members) => groupJob(members, options.spread ?? "nodes", nodes, options.partition),
  create(options, { nodes, listenAddress }, { home, images }) {
    // troupe's home must be on the shared file system anyway (outputs, logs): by default the runtime's files are there too.
    const sharedDir = resolve(options.shared_dir ?? process.env.TROUPE_SLURM_SHARED ?? `${home}/slurm`);
    return new SlurmPool({
      env: process.env,
      sharedDir,
      listenAddress,
      partition: options.partition,
      account: options.account,
      qos: options.qos,
      spread: options.spread ?? "nodes",
      home,
      nodes,
      images,
      nodeEngine: options.node_engine,
      batchJobs: options.batch_jobs,
      taskUser: options.task_user === undefined ? undefined : (readTaskUser(options.task_user) as TaskUser),
    });
  },
});
