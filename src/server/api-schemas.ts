/**
 * The API's request shapes, defined once with zod: Fastify validates requests
 * with their JSON Schema form, and the OpenAPI document is built from the
 * same schemas.
 */
import { z } from "zod";

export const MAX_SPEC_CHARS = 10 * 1024 * 1024;

const variables = z.record(z.string().max(256), z.string().max(65_536)).default({});

export const SubmitBody = z
  .object({
    spec: z.string().min(1).max(MAX_SPEC_CHARS).describe("the workflow file's text"),
    set: variables.describe("template variables (numbers become numbers)"),
    set_string: variables.describe("template variables, always strings"),
    dry_run: z.boolean().default(false).describe("validate and plan, run nothing"),
    validation_only: z.boolean().default(false).describe("the same as dry_run"),
  })
  .strict();

export const PoolParams = z.object({ pool: z.string().min(1).max(128) }).strict();
export const IdParams = z.object({ id: z.string().min(1).max(256) }).strict();

export const ListQuery = z
  .object({
    status: z.string().max(64).optional(),
    name: z.string().max(256).optional(),
    pool: z.string().max(128).optional(),
    user: z.string().max(256).optional(),
    since: z.string().datetime({ offset: true }).optional().describe("submitted at or after (ISO 8601)"),
    until: z.string().datetime({ offset: true }).optional().describe("submitted before (ISO 8601)"),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();

export const CancelBody = z.object({ force: z.boolean().default(false) }).strict();

type Part = "params" | "querystring" | "body";

/**
 * A route's `schema` (JSON Schema, for the OpenAPI document) and a validator
 * that checks each part with the zod schema it came from: no type coercion
 * of JSON bodies, defaults applied, the first problem named with its field.
 */
export function routeSchemas(parts: Partial<Record<Part, z.ZodType>>) {
  const schema: Record<string, unknown> = {};
  for (const [part, zod] of Object.entries(parts)) schema[part] = z.toJSONSchema(zod, { target: "draft-7", io: "input" });
  return {
    schema,
    validatorCompiler:
      ({ httpPart }: { httpPart?: string }) =>
      (data: unknown) => {
        const zod = parts[httpPart as Part];
        if (!zod) return { value: data };
        const result = zod.safeParse(data ?? (httpPart === "body" ? undefined : {}));
        if (result.success) return { value: result.data };
        const issue = result.error.issues[0]!;
        const where = [httpPart, ...issue.path.map(String)].join(".");
        return { error: Object.assign(new Error(`${where}: ${issue.message}`), { statusCode: 400 }) };
      },
  };
}
