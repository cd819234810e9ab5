export type { Runtime, RunContext, TaskLaunch, PreparedMember, ExitInfo, OutputSink } from "./types.js";
export { TaskStartError } from "./types.js";
export { HostRuntime, type HostRuntimeOptions, type Isolation } from "./host/host-runtime.js";
export { DEFAULT_TASK_USER, type TaskUser } from "./host/sandbox.js";
export { canUseNetworkNamespaces } from "./host/network.js";
export { ContainerRuntime, type ContainerRuntimeOptions, type PullPolicy } from "./container/container-runtime.js";
export { connectEngine, NoEngineError, type EngineName } from "./container/engine.js";
export { checkEngine, type EngineRefusal } from "./container/engine-check.js";
export type { ContainerBackend } from "./container/backend.js";
export { killKeptTasks } from "./kept-task.js";
export { LocalPool } from "./local-pool.js";
export {
  SlurmPool,
  clusterCapacity,
  groupJob,
  type GroupJob,
  localAddressToward,
  partitionNodes,
  type ClusterCapacity,
  type SlurmNode,
  type SlurmSettings,
  type Spread,
} from "./slurm/index.js";
// Kubernetes: here only what deciding needs. The runtime itself (its pool, the cluster's facts) loads the
// Kubernetes client, which took about 40 ms of every troupe command's start: it is loaded once it is chosen.
export { BARRIER_HOLDERS } from "./kubernetes/barrier.js";
export { GANG_SCHEDULERS } from "./kubernetes/pod-groups.js";
export { pathInside } from "./kubernetes/data-volume.js";
export { checkPodTemplate, type PodTemplate } from "./kubernetes/platforms.js";
export type { KubernetesSettings } from "./kubernetes/kubernetes-pool.js";
export type { NodeCapacity } from "./kubernetes/cluster-facts.js";
/** The Kubernetes runtime (its pool, the cluster's facts), loaded when a run or pool chooses it. */
export const loadKubernetesRuntime = () => import("./kubernetes/index.js");
export type KubernetesRuntime = Awaited<ReturnType<typeof loadKubernetesRuntime>>;
