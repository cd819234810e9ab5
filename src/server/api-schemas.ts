/**
 * The API's request shapes, defined once with zod: Fastify validates requests
 * with their JSON Schema form, and the OpenAPI document is built from the
 * same schemas (and from the response shapes of api-responses.ts).
 */
import { z } from "zod";
import { checkLabelKey, checkLabelValue, MAX_LABELS } from "../spec/index.js";
import { Priority, responseJsonSchemas, type ResponseSchemas } from "./api-responses.js";

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

/** `key=value` (that value) or `key` (any value), as the list's `label` filter takes them. */
const LabelFilter = z.string().transform((text, ctx) => {
  const eq = text.indexOf("=");
  const key = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? undefined : text.slice(eq + 1);
  for (const [what, part, check] of [
    ["label key", key, checkLabelKey],
    ["label value", value, checkLabelValue],
  ] as const) {
    const result = part === undefined ? undefined : check(part);
    if (result && !result.ok) ctx.addIssue({ code: "custom", message: `${what} \`${part}\` ${result.reason}` });
  }
  return { key, value };
});

export const SubmitBody = z
  .object({
    spec: z.string().min(1).max(MAX_SPEC_CHARS).describe("the workflow file's text"),
    set: variables.describe("template variables (numbers become numbers)"),
    set_string: variables.describe("template variables, always strings"),
    dry_run: z.boolean().default(false).describe("validate and plan, run nothing"),
    validation_only: z.boolean().default(false).describe("the same as dry_run"),
    priority: Priority.default("NORMAL").describe("recorded with the run; it does not order scheduling yet"),
    labels: z
      .record(LabelKey, LabelValue)
      .superRefine((labels, ctx) => tooMany(Object.keys(labels).length, ctx))
      .default({})
      .describe(`at most ${MAX_LABELS} Kubernetes-style labels; they override the spec's workflow.labels of the same key`),
  })
  .strict();

export const PoolParams = z.object({ pool: z.string().min(1).max(128) }).strict();
export const IdParams = z.object({ id: z.string().min(1).max(256) }).strict();

export const ListQuery = z
  .object({
    status: z.string().max(64).optional(),
    name: z.string().max(256).optional(),
    pool: z.string().max(128).optional(),
    user: z
      .string()
      .max(256)
      .optional()
      .describe("submitted by this user (a server with --private-workflows lists only the caller's own, to all but admins)"),
    since: z.string().datetime({ offset: true }).optional().describe("submitted at or after (ISO 8601)"),
    until: z.string().datetime({ offset: true }).optional().describe("submitted before (ISO 8601)"),
    priority: Priority.optional(),
    label: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .transform((v, ctx) => {
        const all = v === undefined ? [] : Array.isArray(v) ? v : [v];
        tooMany(all.length, ctx);
        return all;
      })
      .pipe(z.array(LabelFilter))
      .describe("key=value (that value) or key (any value); repeat it for workflows that have every one"),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();

export const CancelBody = z.object({ force: z.boolean().default(false) }).strict();

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
