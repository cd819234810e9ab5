/**
 * The compiled form of a workflow: the only input the engine accepts.
 * References are resolved to indices, durations are milliseconds, sizes are
 * bytes, and strings that carry tokens are already split into parts.
 */
import type { ExitAction, ExitRange, TokenPart } from "../spec/index.js";

/** A string as literal text and tokens (`{{output}}`, `{{host:x}}` ...), substituted at start. */
export type TokenizedText = readonly TokenPart[];

export interface CompiledWorkflow {
  name: string;
  labels: Readonly<Record<string, string>>;
  pool: string | undefined;
  timeouts: Timeouts;
  /** Groups in topological order (upstream first; ties keep the file's order). */
  groups: readonly CompiledGroup[];
  taskCount: number;
}

export interface Timeouts {
  execMs: number | undefined;
  queueMs: number | undefined;
}

export interface CompiledGroup {
  /** Position in `CompiledWorkflow.groups`. */
  index: number;
  name: string;
  barrier: boolean;
  ignoreNonleadStatus: boolean;
  /** Index into `tasks` of the lead. */
  leadIndex: number;
  tasks: readonly CompiledTask[];
  /** Groups that must complete first, and groups that wait for this one (indices). */
  upstream: readonly number[];
  downstream: readonly number[];
  /** What admitting the whole group (gang) takes. */
  demand: ResourceDemand;
}

export interface ResourceDemand {
  cpu: number;
  gpu: number;
  memoryBytes: number;
  storageBytes: number;
}

export interface CompiledResources extends ResourceDemand {
  /** The `workflow.resources` entry it came from. */
  name: string;
  platform: string | undefined;
  nodesExcluded: readonly string[];
}

export type CompiledInput =
  /** `regex`: only the upstream output's files whose path it matches (from its start) are given. */
  | { kind: "task"; task: string; group: number; regex: string | undefined }
  | { kind: "workflow-task"; workflowId: string; task: string }
  | { kind: "url"; url: string; regex: string | undefined };

export interface CompiledFile {
  path: string;
  /** Text with tokens, or base64-encoded bytes (no tokens), or a local file to inline. */
  source: { kind: "text"; contents: TokenizedText } | { kind: "base64"; data: string } | { kind: "local"; path: string };
}

export interface CompiledCheckpoint {
  /** The directory in the task whose files are uploaded (`{{output}}` may name it). */
  path: TokenizedText;
  url: TokenizedText;
  frequencyMs: number;
  regex: string | undefined;
}

export interface ExitActionRule extends ExitRange {
  action: ExitAction;
}

export interface CompiledTask {
  name: string;
  /** Index of its group in `CompiledWorkflow.groups`. */
  group: number;
  lead: boolean;
  image: string;
  command: readonly TokenizedText[];
  args: readonly TokenizedText[];
  environment: Readonly<Record<string, TokenizedText>>;
  files: readonly CompiledFile[];
  inputs: readonly CompiledInput[];
  outputs: ReadonlyArray<{ url: TokenizedText; regex: string | undefined }>;
  credentials: Readonly<Record<string, string | Readonly<Record<string, string>>>>;
  resources: CompiledResources;
  /** The task's own exit actions, sorted by code; the pool's defaults come after. */
  exitActions: readonly ExitActionRule[];
  volumeMounts: readonly string[];
  checkpoints: readonly CompiledCheckpoint[];
  privileged: boolean;
  hostNetwork: boolean;
}
