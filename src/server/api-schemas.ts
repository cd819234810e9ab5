/**
 * The API's request shapes, defined once with zod: Fastify validates requests
 * with their JSON Schema form, and the OpenAPI document is built from the
 * same schemas (and from the response shapes of api-responses.ts).
 */
import { z } from "zod";
import { checkEnvName, checkEnvValue, MAX_SET_ENV } from "../plan/index.js";
import { checkLabelKey, checkLabelValue, MAX_LABELS } from "../spec/index.js";
import { Priority, responseJsonSchemas, type ResponseSchemas } from "./api-responses.js";
import { parseLabelSelector } from "./label-selector.js";

export const MAX_SPEC_CHARS = 10 * 1024 * 1024;

const variables = z.record(z.string().max(256), z.string().max(65_536)).default({});

/** Longest label key: a DNS-subdomain prefix (253), `/`, a name (63). */
const MAX_LABEL_KEY = 253 + 1 + 63;
type Check = (value: string) => { ok: true } | { ok: false; reason: string };
const checked = (what: string, check: Check) =>
  z.string().superRefine((value, ctx) => {
    const result = check(value);
    if (!result.ok) ctx.addIssue({ code: "custom", message: `${what} \`${value}\` ${result.reason}` });
  });
const LabelKey = checked("label key", checkLabelKey).meta({
  maxLength: MAX_LABEL_KEY,
  description:
    "[prefix/]name: name at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; prefix a lowercase DNS subdomain",
});
const LabelValue = checked("label value", checkLabelValue).meta({
  maxLength: 63,
  description: "empty, or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
});
const tooMany = (count: number, ctx: z.RefinementCtx) => {
  if (count > MAX_LABELS) ctx.addIssue({ code: "custom", message: `${count} labels given; at most ${MAX_LABELS} are allowed` });
};

/** A list filter's label selector (label-selector.ts): `key=value`, `key=sim_*`, `key=(a|b)`, or `key` (any value). */
const LabelFilter = z.string().transform((text, ctx) => {
  const parsed = parseLabelSelector(text);
  if (!parsed.ok) {
    ctx.addIssue({ code: "custom", message: parsed.reason });
    return z.NEVER;
  }
  return parsed.selector;
});

const EnvName = checked("environment variable", (name) => {
  const result = checkEnvName(name);
  return result.ok ? result : { ok: false, reason: result.reason.replace(/^`[^`]*` /, "") };
}).meta({ maxLength: 256, description: "a letter or _, then letters, digits or _" });

/** A query parameter given once or repeated: always a list. */
const repeated = <T extends z.ZodType<unknown, string>>(item: T, most: number, what: string) =>
  z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v, ctx) => {
      const all = v === undefined ? [] : Array.isArray(v) ? v : [v];
      if (all.length > most) ctx.addIssue({ code: "custom", message: `${all.length} ${what} given; at most ${most} are allowed` });
      return all;
    })
    .pipe(z.array(item));

/** true/false in a query string. */
const flag = z
  .enum(["true", "false", "1", "0"])
  .optional()
  .transform((v) => v === "true" || v === "1");

/** A tag (`workflow tag`): a word as a label value is, not empty. */
export const Tag = checked("tag", (tag) => (tag === "" ? { ok: false, reason: "is empty" } : checkLabelValue(tag))).meta({
  maxLength: 63,
  description: "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
});

export const SubmitBody = z
  .object({
    spec: z.string().min(1).max(MAX_SPEC_CHARS).optional().describe("the workflow file's text (or workflow_id)"),
    workflow_id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("instead of a spec: submit again the spec a workflow ran (rendered), as a new workflow with its labels"),
    set: variables.describe("template variables (numbers become numbers)"),
    set_string: variables.describe("template variables, always strings"),
    set_env: z
      .record(EnvName, z.string().max(65_536))
      .superRefine((env, ctx) => {
        const entries = Object.entries(env);
        if (entries.length > MAX_SET_ENV)
          ctx.addIssue({ code: "custom", message: `${entries.length} variables given; at most ${MAX_SET_ENV} are allowed` });
        for (const [name, value] of entries) {
          const result = checkEnvValue(name, value);
          if (!result.ok) ctx.addIssue({ code: "custom", path: [name], message: result.reason });
        }
      })
      .default({})
      .describe("environment variables set in every task, over the task's own (OSMO's --set-env)"),
    dry_run: z.boolean().default(false).describe("validate and plan, run nothing"),
    validation_only: z.boolean().default(false).describe("the same as dry_run"),
    priority: Priority.default("NORMAL").describe("recorded with the run; it does not order scheduling yet"),
    labels: z
      .record(LabelKey, LabelValue)
      .superRefine((labels, ctx) => tooMany(Object.keys(labels).length, ctx))
      .default({})
      .describe(`at most ${MAX_LABELS} Kubernetes-style labels; they override the spec's workflow.labels of the same key`),
  })
  .strict()
  // Neither field is required alone, but one of them is: the body may not be left out (app.ts, optionalBodies).
  .meta({ "x-body-required": true })
  .superRefine((body, ctx) => {
    if ((body.spec === undefined) === (body.workflow_id === undefined))
      ctx.addIssue({ code: "custom", path: ["spec"], message: "give either spec (a workflow file's text) or workflow_id, not both" });
    if (body.workflow_id !== undefined && (Object.keys(body.set).length > 0 || Object.keys(body.set_string).length > 0))
      ctx.addIssue({
        code: "custom",
        path: ["set"],
        message: "a resubmission (workflow_id) runs the spec as it was rendered: no set or set_string",
      });
  });

export const PoolParams = z.object({ pool: z.string().min(1).max(128) }).strict();
export const IdParams = z.object({ id: z.string().min(1).max(256) }).strict();

export const ListQuery = z
  .object({
    status: z.string().max(64).optional(),
    name: z.string().max(256).optional(),
    pool: z.string().max(128).optional(),
    user: repeated(z.string().min(1).max(256), 64, "users").describe(
      "submitted by this user; repeat for any of several (default: the caller's own, as OSMO; a server with --private-workflows lists only the caller's own, to all but admins)",
    ),
    all_users: flag.describe("every user's workflows (not with user)"),
    since: z.string().datetime({ offset: true }).optional().describe("submitted at or after (ISO 8601)"),
    until: z.string().datetime({ offset: true }).optional().describe("submitted before (ISO 8601)"),
    priority: Priority.optional(),
    label: repeated(LabelFilter, MAX_LABELS, "labels").describe(
      "key=value, with * for any characters and (a|b) for either, e.g. project=(sim_*|hil_*); key alone: any value; repeat it for workflows that match every one",
    ),
    no_label: repeated(LabelKey, MAX_LABELS, "label keys").describe("workflows without this label key; repeat for none of several"),
    tag: repeated(Tag, 64, "tags").describe("workflows with this tag; repeat for any of several"),
    order: z.enum(["asc", "desc"]).default("desc").describe("by submit time: desc newest first (the default), asc oldest first"),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict()
  .superRefine((q, ctx) => {
    if (q.all_users && q.user.length > 0)
      ctx.addIssue({ code: "custom", path: ["all_users"], message: "give user or all_users, not both" });
  });

export const RecordQuery = z.object({ verbose: flag.describe("every attempt of every task, not only the latest") }).strict();
export const SpecQuery = z.object({ template: flag.describe("the spec as submitted, before templating (default: as rendered)") }).strict();

/** OSMO's max_error_log_lines: how much of a failed attempt's output its error logs keep. */
const ERROR_LOG_LINES = 100;

export const ErrorLogsQuery = z
  .object({
    task: z.string().min(1).max(256).optional().describe("only this task (default: every task with error logs)"),
    retry_id: z.coerce.number().int().min(0).optional().describe("with task: the attempt (default: the latest)"),
    n: z.coerce.number().int().min(1).max(10_000).default(ERROR_LOG_LINES).describe("the last n lines of each"),
  })
  .strict();

export const StreamQuery = z
  .object({
    follow: flag.describe("go on as the workflow runs, until it ends"),
    only: z.enum(["events", "output"]).optional().describe("only status changes, or only task output (default both)"),
    task: z.string().min(1).max(256).optional().describe("only this task's output and status changes"),
    n: z.coerce.number().int().min(0).optional().describe("of each log there is already, only the last n lines"),
  })
  .strict();

export const CancelBody = z
  .object({
    force: z.boolean().default(false),
    message: z.string().min(1).max(1024).optional().describe("why: recorded as the reason of the cancel"),
  })
  .strict();

export const TagBody = z
  .object({
    add: z.array(Tag).max(64).default([]).describe("tags to add"),
    remove: z.array(Tag).max(64).default([]).describe("tags to remove (removed before those added)"),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.add.length === 0 && body.remove.length === 0)
      ctx.addIssue({ code: "custom", path: ["add"], message: "no tags to add or remove" });
  });

export const CredentialParams = z.object({ name: z.string().min(1).max(128).describe("the credential's name") }).strict();

/** A credential's payload: key=value pairs (OSMO's keys for REGISTRY and DATA, checked by data/credential-payload.ts). */
const Payload = z.record(z.string().min(1).max(256), z.string().min(1).max(65_536)).superRefine((payload, ctx) => {
  const count = Object.keys(payload).length;
  if (count === 0) ctx.addIssue({ code: "custom", message: "the payload is empty" });
  if (count > 64) ctx.addIssue({ code: "custom", message: `${count} payload keys given; at most 64 are allowed` });
});

/**
 * OSMO's request envelope (`osmo credential set`): exactly one of the three, the payload's values the secrets.
 * An error names the field at fault, never a value.
 */
export const CredentialBody = z
  .object({
    registry_credential: Payload.optional().describe("REGISTRY: auth (or password), optional registry and username"),
    data_credential: Payload.optional().describe(
      "DATA: endpoint (s3://BUCKET[/PATH]), access_key_id, access_key, optional region, override_url, addressing_style",
    ),
    generic_credential: z
      .object({ credential: Payload.describe("any keys; tasks get them through `credentials:`") })
      .strict()
      .optional()
      .describe("GENERIC"),
  })
  .strict()
  .meta({ "x-body-required": true })
  .superRefine((body, ctx) => {
    const given = [body.registry_credential, body.data_credential, body.generic_credential].filter((x) => x !== undefined).length;
    if (given !== 1)
      ctx.addIssue({
        code: "custom",
        path: [],
        message: "give exactly one of registry_credential, data_credential, generic_credential",
      });
  });

type Part = "params" | "querystring" | "body";

/**
 * A route's `schema` (JSON Schema of its request parts and its responses, for
 * the OpenAPI document) and a validator that checks each request part with
 * the zod schema it came from: no type coercion of JSON bodies, defaults
 * applied, the first problem named with its field.
 */
export function routeSchemas(parts: Partial<Record<Part, z.ZodType>>, response: ResponseSchemas) {
  const schema: Record<string, unknown> = { response: responseJsonSchemas(response) };
  for (const [part, zod] of Object.entries(parts)) schema[part] = z.toJSONSchema(zod, { target: "draft-7", io: "input" });
  return {
    schema,
    validatorCompiler:
      ({ httpPart }: { httpPart?: string }) =>
      (data: unknown) => {
        const zod = parts[httpPart as Part];
        if (!zod) return { value: data };
        // No body (a POST with nothing to say, such as a cancel) is an empty object: its defaults apply.
        const result = zod.safeParse(data ?? {});
        if (result.success) return { value: result.data };
        // A record key that failed its own check (labels): report that check.
        const first = result.error.issues[0]!;
        const issue = first.code === "invalid_key" ? { ...first.issues[0]!, path: first.path } : first;
        const where = [httpPart, ...issue.path.map(String)].join(".");
        return { error: Object.assign(new Error(`${where}: ${issue.message}`), { statusCode: 400 }) };
      },
  };
}
