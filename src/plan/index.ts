export { compileWorkflow, type CompileOptions } from "./compile.js";
export { checkEnvName, checkEnvValue, parseEnvAssignment, MAX_SET_ENV } from "./set-env.js";
export { compileExitActions, exitActionFor } from "./exit-actions.js";
export { expandEnvironmentReferences, renderTokenized } from "./text.js";
export type * from "./types.js";
export {
  dataStoreRefusal,
  hostNetworkRefusal,
  platformRefusal,
  taskDataRefusal,
  mountAllowed,
  policyRefusals,
  type DataSharing,
  type PoolPolicy,
} from "./pool-policy.js";
