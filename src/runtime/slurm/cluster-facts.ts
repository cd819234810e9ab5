/**
 * What troupe learns of a cluster before a run: its nodes (the partition's),
 * their total capacity (the engine's ledger and the plan-time check that a
 * group can ever fit), and the address of this node that the nodes reach
 * (where the member helpers connect), found from the route to a node.
 */
import { createSocket } from "node:dgram";
import { readNodes, type SlurmNode } from "./slurm-commands.js";

export interface ClusterCapacity {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

/** The nodes of `partition` (default: the cluster's default partition; every node when none is marked). */
export async function partitionNodes(env: NodeJS.ProcessEnv, partition: string | undefined): Promise<SlurmNode[]> {
  const nodes = await readNodes(env);
  const name = partition ?? nodes.find((n) => n.defaultPartition)?.defaultPartition;
  return name === undefined ? nodes : nodes.filter((n) => n.partitions.includes(name));
}

/** The nodes' totals: every node counts, drained or down ones too (they may come back while a group waits). */
export function clusterCapacity(nodes: readonly SlurmNode[]): ClusterCapacity {
  return {
    cpu: nodes.reduce((sum, n) => sum + n.cpus, 0),
    gpu: nodes.reduce((sum, n) => sum + n.gpus, 0),
    memoryBytes: nodes.reduce((sum, n) => sum + n.memoryMb * 2 ** 20, 0),
  };
}

/** The address this machine sends from to reach `address` (the kernel's route; a UDP connect sends nothing). */
export function localAddressToward(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(address.includes(":") ? "udp6" : "udp4");
    socket.on("error", (error) => (socket.close(), reject(error)));
    socket.connect(9, address, () => {
      const local = socket.address().address;
      socket.close();
      resolve(local);
    });
  });
}
