/**
 * The workflow file schema: the single source of truth for the shape of a
 * workflow. The TypeScript types are inferred from it and the editor JSON
 * Schema is generated from it (`troupe schema`). Leaf values are checked here
 * with the shared parsers of values.ts; rules that span several fields live in
 * rules/.
 */
import * as z from "zod";
import { didYouMean } from "../util/suggest.js";
import { checkImageReference, IMAGE_PATTERN } from "./image.js";
import {
  MAX_LABELS,
  NAME_MAX_LENGTH,
  NAME_PATTERN,
  checkLabelKey,
  checkSpecLabelValue,
  checkName,
  checkVolumeMount,
  parseCount,
  parseDuration,
  parseExitRanges,
  parseSize,
  type Parsed,
} from "./values.js";

/** Attach a value parser to a schema: its failure becomes an issue with our code. */
function rule<T extends z.ZodType>(
  schema: T,
  code: string,
  what: string,
  parse: (v: z.output<T>) => Parsed<unknown> & { hint?: string },
): T {
  return schema.superRefine((value, ctx) => {
    const result = parse(value);
    if (!result.ok) ctx.addIssue({ code: "custom", message: `${what} ${result.reason}`, params: { code, hint: result.hint } });
  }) as unknown as T;
}

/** OSMO coerces numbers and booleans written in string fields (`code: 15`). */
const Str = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));
const StrOrInt = z.union([z.string(), z.number()]);

/** No program can be given a NUL (it ends a C string), and troupe's helpers separate fields with it. */
const withoutNul = (value: string): Parsed<string> & { hint?: string } =>
  value.includes("\0")
    ? { ok: false, reason: "contains a NUL character (\\0), which no program can be given", hint: "remove the \\0" }
    : { ok: true, value };
/** What reaches a task's command line or environment. */
const Arg = rule(Str, "E_NUL_CHARACTER", "the value", withoutNul);

const Name = (what: string) =>
  rule(z.string(), "E_BAD_NAME", what, checkName).meta({
    pattern: NAME_PATTERN.source,
    maxLength: NAME_MAX_LENGTH,
    description: `${what}: a letter, then letters, digits, '-' or '_', ending with a letter or digit; at most ${NAME_MAX_LENGTH} characters`,
  });

const Size = (what: string) =>
  rule(StrOrInt, "E_BAD_SIZE", what, parseSize).meta({ description: `${what}: bytes, or a quantity such as 512Mi or 1Gi` });
const Count = (what: string) => rule(StrOrInt, "E_BAD_COUNT", what, parseCount).meta({ description: `${what}: a whole number` });
const Duration = (what: string) =>
  rule(StrOrInt, "E_BAD_DURATION", what, parseDuration).meta({ description: `${what}: <int><s|m|h|d>, for example 30m` });
const ExitRanges = rule(StrOrInt, "E_BAD_EXIT_RANGE", "the exit-code list", parseExitRanges).meta({
  description: 'exit codes and ranges, for example "0,2-5,16"',
});

export const ResourceSpecSchema = z.strictObject({
  cpu: Count("cpu").optional(),
  gpu: Count("gpu").optional(),
  memory: Size("memory").optional(),
  storage: Size("storage").optional(),
  platform: Str.optional(),
  nodesExcluded: z.array(Str).optional(),
  topology: z.array(z.record(z.string(), Str)).optional(),
});
export type ResourceSpec = z.output<typeof ResourceSpecSchema>;

export const TimeoutSchema = z.strictObject({
  exec_timeout: Duration("exec_timeout").optional(),
  queue_timeout: Duration("queue_timeout").optional(),
});

export const FileSchema = z.strictObject({
  path: Str.meta({ description: "absolute path the file is written at inside the task" }),
  contents: Str.optional(),
  base64: z.boolean().optional().meta({ description: "contents are base64-encoded bytes" }),
  localpath: Str.optional().meta({ description: "file read relative to the spec file, then inlined" }),
});
export type FileSpec = z.output<typeof FileSchema>;

export const InputSchema = z.strictObject({
  task: Str.optional().meta({ description: "NAME (a task of this workflow) or WORKFLOW_ID:NAME" }),
  url: Str.optional(),
  regex: Str.optional(),
});
export type InputSpec = z.output<typeof InputSchema>;

export const OutputSchema = z.strictObject({ url: Str, regex: Str.optional() });

export const CheckpointSchema = z.strictObject({
  path: Str,
  url: Str,
  frequency: Duration("checkpoint frequency"),
  regex: Str.optional(),
});

export const EXIT_ACTIONS = ["COMPLETE", "FAIL", "RESCHEDULE"] as const;
export type ExitAction = (typeof EXIT_ACTIONS)[number];
export type ExitActionsSpec = Partial<Record<ExitAction, string | number>>;

/** An exit action's key, in any case: OSMO upper-cases them (`complete: 0` is COMPLETE). */
const ExitActionKey = rule(z.string(), "E_UNKNOWN_FIELD", "unknown exit action", checkExitActionName).meta({
  pattern: `^(${EXIT_ACTIONS.map((a) => [...a].map((c) => `[${c}${c.toLowerCase()}]`).join("")).join("|")})$`,
  description: "COMPLETE, FAIL or RESCHEDULE, in any case",
});

function checkExitActionName(key: string): Parsed<string> & { hint?: string } {
  if ((EXIT_ACTIONS as readonly string[]).includes(key.toUpperCase())) return { ok: true, value: key };
  const hint = didYouMean(key.toUpperCase(), EXIT_ACTIONS);
  return { ok: false, reason: `\`${key}\`: the actions are ${EXIT_ACTIONS.join(", ")}, in any case`, hint };
}

export const ExitActionsSchema = z
  .record(ExitActionKey, ExitRanges)
  .superRefine((actions, ctx) => {
    const seen = new Map<string, string>();
    for (const key of Object.keys(actions)) {
      const action = key.toUpperCase();
      const first = seen.get(action);
      if (first === undefined) seen.set(action, key);
      else
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `\`${key}\` is the exit action \`${first}\` again (keys are read in any case)`,
          params: { code: "E_DUPLICATE_EXIT_ACTION", hint: "give each action once" },
        });
    }
  })
  .transform((actions): ExitActionsSpec => {
    const out: ExitActionsSpec = {};
    for (const [key, value] of Object.entries(actions)) out[key.toUpperCase() as ExitAction] = value;
    return out;
  });

export const TaskSchema = z.strictObject({
  name: Name("task name"),
  image: rule(Str, "E_BAD_IMAGE", "image", checkImageReference).meta({
    pattern: IMAGE_PATTERN.source,
    description: "container image, [registry[:port]/]name[:tag][@digest], e.g. alpine:3.18",
  }),
  command: z.array(Arg).min(1).meta({ description: "the command to run (non-empty list)" }),
  args: z.array(Arg).optional(),
  lead: z.boolean().optional(),
  environment: z.record(rule(z.string(), "E_NUL_CHARACTER", "the variable's name", withoutNul), Arg).optional(),
  files: z.array(FileSchema).optional(),
  inputs: z.array(InputSchema).optional(),
  outputs: z.array(OutputSchema).optional(),
  credentials: z.record(z.string(), z.union([Str, z.record(z.string(), Str)])).optional(),
  resource: Str.optional().meta({ description: "name of a workflow.resources entry (default: `default`)" }),
  exitActions: ExitActionsSchema.optional(),
  volumeMounts: z
    .array(rule(Str, "E_BAD_VOLUME_MOUNT", "the volume mount", checkVolumeMount))
    .optional()
    .meta({ description: "host mounts, `SRC` or `SRC:DEST`" }),
  checkpoint: z.union([CheckpointSchema, z.array(CheckpointSchema)]).optional(),
  privileged: z.boolean().optional(),
  hostNetwork: z.boolean().optional(),
});
export type TaskSpec = z.output<typeof TaskSchema>;

export const GroupSchema = z.strictObject({
  name: Name("group name"),
  tasks: z.array(TaskSchema).min(1),
  barrier: z.boolean().optional().meta({ description: "start members' commands together (default true)" }),
  ignoreNonleadStatus: z.boolean().optional().meta({ description: "only the lead decides the group's status (default true)" }),
});
export type GroupSpec = z.output<typeof GroupSchema>;

const Labels = z
  .record(rule(z.string(), "E_BAD_LABEL", "label key", checkLabelKey), rule(Str, "E_BAD_LABEL", "label value", checkSpecLabelValue))
  .superRefine((labels, ctx) => {
    const count = Object.keys(labels).length;
    if (count > MAX_LABELS) {
      ctx.addIssue({
        code: "custom",
        message: `${count} labels given; at most ${MAX_LABELS} are allowed`,
        params: { code: "E_TOO_MANY_LABELS" },
      });
    }
  });

export const WorkflowSchema = z.strictObject({
  name: Name("workflow name"),
  labels: Labels.optional(),
  pool: Str.optional(),
  resources: z.record(z.string(), ResourceSpecSchema).optional(),
  timeout: TimeoutSchema.optional(),
  tasks: z.array(TaskSchema).optional(),
  groups: z.array(GroupSchema).optional(),
});
export type WorkflowBody = z.output<typeof WorkflowSchema>;

export const WorkflowFileSchema = z
  .strictObject({
    workflow: WorkflowSchema,
    // Empty (`default-values:` with nothing under it) is null, which OSMO accepts too.
    "default-values": z
      .record(z.string(), z.unknown())
      .nullable()
      .optional()
      .meta({ description: "template variables and their defaults" }),
    version: z
      .union([z.literal(2), z.literal("2")])
      .optional()
      .meta({ description: "spec version; only 2 is accepted" }),
  })
  .meta({ title: "troupe workflow", description: "An OSMO-compatible workflow file (schema version 2)." });

/** A workflow file whose shape is valid (cross-field rules are checked separately). */
export type WorkflowSpec = z.output<typeof WorkflowFileSchema>;

export function workflowJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(WorkflowFileSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
