export { SlurmPool, type SlurmSettings } from "./slurm-pool.js";
export { clusterCapacity, localAddressToward, partitionNodes, type ClusterCapacity } from "./cluster-facts.js";
export type { Spread } from "./batch-script.js";
export type { SlurmNode } from "./slurm-commands.js";
export { groupJob, type GroupJob } from "./placement.js";
