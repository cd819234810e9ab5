export { compileWorkflow } from "./compile.js";
export { compileExitActions, exitActionFor } from "./exit-actions.js";
export { expandEnvironmentReferences, renderTokenized } from "./text.js";
export type * from "./types.js";
export { policyRefusals, type PoolPolicy } from "./pool-policy.js";
