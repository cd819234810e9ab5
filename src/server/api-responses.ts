/**
 * The API's response shapes, defined once with zod: each route's
 * `schema.response` (and so the OpenAPI document) is built from them, and the
 * tests check real responses against them. Objects are strict, so a field the
 * server sends but the document does not name fails those tests.
 */
import { z } from "zod";
import { PRIORITIES, TaskStatus, WorkflowStatus, type RunRecord, type RunSummary, type TransitionRecord } from "../model/index.js";

const Time = z.iso.datetime().describe("ISO 8601, UTC, with milliseconds");
const RunStatus = z.enum(Object.values(WorkflowStatus));
const TaskStatusSchema = z.enum(Object.values(TaskStatus));
const GroupStatus = z.enum(Object.values(TaskStatus).filter((s) => s !== "RESCHEDULED"));
const AnyStatus = z.enum([...new Set<string>([...Object.values(WorkflowStatus), ...Object.values(TaskStatus)])]);

export const Priority = z.enum(PRIORITIES);
export const Labels = z.record(z.string(), z.string());

/** A run's own fields, then those only runs submitted to a server have. */
const runFields = {
  id: z.string(),
  name: z.string(),
  status: RunStatus,
  submit_time: Time,
  start_time: Time.nullable(),
  end_time: Time.nullable(),
  pool: z.string().optional().describe("the pool it was submitted to"),
  user: z.string().optional().describe("who submitted it (the token's name)"),
  priority: Priority.optional().describe("its priority (recorded; it does not order scheduling yet)"),
  labels: Labels.optional().describe("its labels: the spec's workflow.labels, then the submission's"),
  tags: z.array(z.string()).optional().describe("its tags (`workflow tag`), when it has any"),
};

const attemptFields = {
  status: TaskStatusSchema,
  exit_code: z.number().int().nullable(),
  ip: z.string().nullable(),
  start_time: Time.nullable(),
  end_time: Time.nullable(),
  reason: z
    .string()
    .nullable()
    .describe("why the attempt is where it is: the reason of its last change (exit code, timeout, upstream, ...)"),
};

export const AttemptSchema = z.strictObject({ retry_id: z.number().int().min(0), ...attemptFields });

export const TaskRecordSchema = z.strictObject({
  name: z.string(),
  lead: z.boolean(),
  retry_id: z.number().int().min(0).describe("the current attempt"),
  ...attemptFields,
  reused_from: z.string().optional().describe("a task a restart took over (never run in this workflow): the workflow it ran in"),
  attempts: z.array(AttemptSchema).optional().describe("with verbose: every attempt, in retry order"),
});

export const GroupRecordSchema = z.strictObject({
  name: z.string(),
  status: GroupStatus,
  start_time: Time.nullable(),
  end_time: Time.nullable(),
  reused_from: z
    .string()
    .optional()
    .describe("a group a restart took over (completed in an earlier workflow, not run again): the workflow whose outputs it uses"),
  tasks: z.array(TaskRecordSchema),
});

export const RunRecordSchema = z
  .strictObject({
    ...runFields,
    groups: z.array(GroupRecordSchema),
  })
  .describe("the workflow: its groups and their tasks, in plan order");

export const RunSummarySchema = z.strictObject({
  ...runFields,
  task_count: z.number().int().min(0),
});

export const ListResponse = z
  .strictObject({ workflows: z.array(RunSummarySchema) })
  .describe("workflows by submit time: newest first, or oldest first with order=asc");

export const TransitionSchema = z.strictObject({
  group: z.string().nullable().describe("null for the workflow's own changes"),
  task: z.string().nullable(),
  retry_id: z.number().int().nullable(),
  from: AnyStatus.nullable(),
  to: AnyStatus,
  reason: z.string(),
  time: Time,
});

export const EventsResponse = z.strictObject({ events: z.array(TransitionSchema) }).describe("status changes, in time order");

const Resources = z.strictObject({
  cpus: z.number(),
  gpus: z.number().int(),
  memory_bytes: z.number().int(),
  tasks: z.number().int().describe("task slots (the pool's max_parallel) / tasks running"),
});

export const PoolsResponse = z
  .strictObject({
    pools: z.array(
      z.strictObject({
        name: z.string(),
        runtime: z.string(),
        capacity: Resources,
        used: Resources.describe("what the pool's running workflows hold now"),
        running_workflows: z.number().int(),
        queued_workflows: z.number().int().describe("of those, how many have a group waiting for resources"),
      }),
    ),
  })
  .describe("each pool's capacity and load; none for `troupe ui`'s local history");

export const DiagnosticSchema = z.strictObject({
  severity: z.enum(["error", "warning"]),
  code: z.string().describe("stable: E_... for errors, W_... for warnings"),
  path: z.string().describe("where in the spec, e.g. workflow.tasks[0].image; empty for the file itself"),
  line: z.number().int().min(0).describe("1-based in the file as submitted; 0 when the problem has no place"),
  column: z.number().int().min(0),
  message: z.string(),
  hint: z.string().optional(),
});

const error = z.string().describe("what was wrong, naming the field at fault");
const code = z
  .string()
  .regex(/^E_[A-Z0-9_]+$/)
  .describe("stable, for programs: E_NO_WORKFLOW, E_NOT_RUNNING, E_UNAUTHORIZED, E_BAD_REQUEST, E_INTERNAL, ...");
export const ErrorResponse = z.strictObject({ error, code }).describe("refused or failed");
/** A 400 of a route that validates a spec: with the spec's diagnostics when the spec is what is wrong. */
export const InvalidResponse = z
  .strictObject({
    error,
    code,
    diagnostics: z.array(DiagnosticSchema).optional().describe("an invalid spec (E_INVALID_SPEC): every problem found in it"),
  })
  .describe("refused; an invalid spec comes with every problem found in it");

export const HealthResponse = z.strictObject({ status: z.literal("OK") }).describe("the server answers");

/** An accepted spec's warnings (fields with no effect yet, among others); absent when it has none. */
const warnings = z.array(DiagnosticSchema).optional().describe("the spec's warnings, each with its field and line");

export const ValidatedResponse = z
  .strictObject({
    valid: z.literal(true),
    name: z.string(),
    groups: z.number().int(),
    tasks: z.number().int(),
    plan: z
      .strictObject({
        groups: z.array(
          z.strictObject({
            name: z.string(),
            tasks: z.array(z.strictObject({ name: z.string(), lead: z.boolean() })),
            upstream: z.array(z.string()).describe("the groups it waits for"),
          }),
        ),
      })
      .optional()
      .describe("the plan: its groups in order, each with its tasks and the groups it waits for"),
    diagnostics: warnings,
  })
  .describe("dry run: the workflow is valid and fits the pool; nothing was run");

export const SubmittedResponse = z
  .strictObject({ id: z.string(), name: z.string(), diagnostics: warnings })
  .describe("the workflow was accepted");

export const CanceledResponse = z
  .strictObject({ id: z.string(), canceling: z.literal(true), force: z.boolean() })
  .describe("the workflow is being canceled");

export const RestartedResponse = z
  .strictObject({ id: z.string().describe("the new run"), restarted: z.string().describe("the failed run it continues") })
  .describe("a new run of the failed workflow was started");

export const TaggedResponse = z
  .strictObject({ id: z.string(), tags: z.array(z.string()).describe("its tags now") })
  .describe("the workflow's tags were changed");
export const TagsResponse = z.strictObject({ tags: z.array(z.string()) }).describe("the tags workflows have on this server");

/** What is shown of a credential: never a value of its payload. OSMO's fields (cred_name, cred_type, profile), then troupe's. */
export const CredentialSchema = z.strictObject({
  cred_name: z.string(),
  cred_type: z.enum(["REGISTRY", "DATA", "GENERIC"]),
  profile: z.string().nullable().describe("a DATA credential's endpoint (s3://BUCKET[/PATH]): the store it opens; null for the others"),
  keys: z.array(z.string()).describe("its payload's keys, sorted (never their values)"),
  created: Time,
  updated: Time,
});
export const CredentialsResponse = z
  .strictObject({ credentials: z.array(CredentialSchema) })
  .describe("the caller's own credentials, by name");
export const CredentialSetResponse = CredentialSchema.describe("the credential was set (created, or replaced)");
export const CredentialDeletedResponse = z
  .strictObject({ cred_name: z.string(), deleted: z.literal(true) })
  .describe("the credential was deleted");

/** A response that is not JSON: its media type and what it holds. */
export interface TextResponse {
  mediaType: string;
  description: string;
}

export type ResponseSchemas = Record<number, z.ZodType | TextResponse>;

const errors = (...statuses: number[]): ResponseSchemas => Object.fromEntries(statuses.map((s) => [s, ErrorResponse]));

/** Every route's responses by status, keyed `METHOD path` as the routes are registered. */
export const RESPONSES = {
  "GET /api/health": { 200: HealthResponse, ...errors(500) },
  "GET /api/pool": { 200: PoolsResponse, ...errors(401, 500) },
  "POST /api/pool/:pool/workflow": {
    200: ValidatedResponse,
    201: SubmittedResponse,
    ...errors(401, 403, 404, 413, 414, 415, 429, 500, 503),
    400: InvalidResponse,
  },
  "GET /api/workflow": { 200: ListResponse, ...errors(400, 401, 500) },
  "GET /api/workflow/:id": { 200: RunRecordSchema, ...errors(400, 401, 404, 414, 500) },
  "GET /api/workflow/:id/spec": {
    200: { mediaType: "text/yaml", description: "the spec after templating (with template: as submitted)" },
    ...errors(400, 401, 404, 414, 500),
  },
  "GET /api/workflow/:id/events": { 200: EventsResponse, ...errors(400, 401, 404, 414, 500) },
  "GET /api/workflow/changes": {
    200: {
      mediaType: "application/x-ndjson",
      description:
        'one JSON object a line, until the client goes: {"type":"ready"} once it listens, {"type":"changed","ids":[...]} with the workflows (that the token may read) that changed since the last line, and {"type":"idle"} now and then',
    },
    ...errors(401, 500),
  },
  "GET /api/workflow/:id/stream": {
    200: {
      mediaType: "application/x-ndjson",
      description:
        'one JSON object a line: {"type":"event",...a transition} and {"type":"output","task","retry_id","data"} as they happen, then {"type":"end","status"}',
    },
    ...errors(400, 401, 404, 414, 500),
  },
  "GET /api/workflow/:id/error_logs": {
    200: { mediaType: "text/plain", description: "the last lines of each failed attempt's output (OSMO's error logs)" },
    ...errors(400, 401, 404, 414, 500),
  },
  "POST /api/workflow/:id/tag": { 200: TaggedResponse, ...errors(400, 401, 403, 404, 413, 414, 415, 500) },
  "GET /api/tag": { 200: TagsResponse, ...errors(401, 500) },
  "GET /api/workflow/:id/logs": {
    200: { mediaType: "text/plain", description: "the attempt's output (with follow, a stream that ends when the attempt ends)" },
    ...errors(400, 401, 404, 414, 500),
  },
  "POST /api/workflow/:id/cancel": { 202: CanceledResponse, ...errors(400, 401, 403, 404, 409, 413, 414, 415, 500) },
  "POST /api/workflow/:id/restart": {
    201: RestartedResponse,
    ...errors(401, 403, 404, 409, 414, 429, 500, 503),
    400: InvalidResponse,
  },
  "GET /api/credentials": { 200: CredentialsResponse, ...errors(401, 500) },
  "POST /api/credentials/:name": { 200: CredentialSetResponse, ...errors(400, 401, 413, 414, 415, 500) },
  "DELETE /api/credentials/:name": { 200: CredentialDeletedResponse, ...errors(400, 401, 404, 414, 500) },
} satisfies Record<string, ResponseSchemas>;

export type RouteKey = keyof typeof RESPONSES;

/** The JSON Schema form of a route's responses, for `schema.response`. */
export function responseJsonSchemas(responses: ResponseSchemas): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => [
      status,
      response instanceof z.ZodType
        ? z.toJSONSchema(response, { target: "draft-7", io: "output" })
        : { description: response.description, content: { [response.mediaType]: { schema: { type: "string" } } } },
    ]),
  );
}

// The store's records are what the schemas describe: a change to one that the other does not follow fails to compile.
type Describes<Schema extends z.ZodType, Record> = z.output<Schema> extends Record ? true : never;
const describesTheStore: [
  Describes<typeof RunRecordSchema, RunRecord>,
  Describes<typeof RunSummarySchema, RunSummary>,
  Describes<typeof TransitionSchema, TransitionRecord>,
] = [true, true, true];
void describesTheStore;
