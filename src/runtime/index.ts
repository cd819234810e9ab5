export type { Runtime, RunContext, TaskLaunch, PreparedMember, ExitInfo, OutputSink } from "./types.js";
export { HostRuntime, type HostRuntimeOptions, type Isolation } from "./host/host-runtime.js";
export { canUseNetworkNamespaces } from "./host/network.js";
