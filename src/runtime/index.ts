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
export {
  BARRIER_HOLDERS,
  contextNamespace,
  GANG_SCHEDULERS,
  KubernetesPool,
  listNodes,
  loadKubeConfig,
  nodesCapacity,
  pathInside,
  checkPodTemplate,
  type PodTemplate,
  type KubernetesSettings,
  type NodeCapacity,
} from "./kubernetes/index.js";
