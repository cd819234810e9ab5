export { loadWorkflowSpec, baseDirOf, MAX_SPEC_BYTES, type LoadOptions, type LoadResult } from "./load.js";
export { formatPath, type Diagnostic, type Severity } from "./diagnostics.js";
export {
  WorkflowFileSchema,
  workflowJsonSchema,
  EXIT_ACTIONS,
  ExitActionsSchema,
  type WorkflowSpec,
  type TaskSpec,
  type GroupSpec,
  type ResourceSpec,
  type FileSpec,
  type InputSpec,
  type ExitAction,
  type ExitActionsSpec,
} from "./schema.js";
export { DEFAULT_RENDER_LIMITS, type RenderLimits, type TemplateVariables } from "./template/index.js";
export { tokenizeString, type SpecialToken, type TokenPart } from "./tokens.js";
export {
  parseSize,
  parseCount,
  parseDuration,
  parseExitRanges,
  normalizeName,
  checkLabelKey,
  checkLabelValue,
  checkVolumeMount,
  parseVolumeMount,
  MAX_LABELS,
  type ExitRange,
} from "./values.js";
export { isForeignTaskRef } from "./rules/inputs.js";
export { inlineLocalFiles, asRenderedTemplate } from "./inline.js";
