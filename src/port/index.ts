export type { TaskLaunch, TaskMount, OutputSink, RunContext } from "./launch.js";
export { TaskStartError, startFailure, type MemberOutcome, type OutcomeKind } from "./outcome.js";
export type {
  PoolBackend,
  PoolCapabilities,
  RunSession,
  GroupRef,
  GroupHandle,
  GroupListener,
  MemberRef,
  Placement,
  PrepareOptions,
  StartTimes,
} from "./pool.js";
export { DataTransferError, type DataPlane, type UrlTransfer, type TransferReport } from "./data.js";
export type { CredentialInjection, RegistryAuth, RegistryAuthority, TaskCredentials } from "./credentials.js";
