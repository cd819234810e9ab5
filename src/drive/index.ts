export { driveRun, recordRun, DrivenRun, type DriveOptions, type DriveOutcome, type EngineSettings, type RunDetails } from "./drive-run.js";
export {
  requestRuntime,
  resolveRequest,
  type ChosenRuntime,
  type RequestNaming,
  type RuntimeChoice,
  type RuntimeRequest,
} from "./choose.js";
export { RUNTIME_KINDS, runtimeKind, runtimeKindNames, runtimeOptionShape, unknownRuntimeKind } from "./registry.js";
export type { RuntimeKind, PoolContext, CheckContext, KnownCapacity, GroupPlacer, GroupPlacement } from "./kind.js";
export { readTaskUser } from "./kinds/task-user.js";
export { credentialDataPlane, homeDataPlane } from "./data-plane.js";
export { credentialRegistryAuth } from "./registry-auth.js";
export { checkHomeCredentialUse, checkStoredCredentialUse, homeTaskCredentials, openTaskCredentials } from "./task-credentials.js";
