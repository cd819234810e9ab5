/**
 * The HTTP API (OSMO's paths) around the store and the run manager: Fastify,
 * requests validated against api-schemas.ts, responses described by
 * api-responses.ts, bearer tokens on every route but health, bad input
 * answered with a 4xx and a reason, never a 500.
 */
import swagger from "@fastify/swagger";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { z } from "zod";
import type { Diagnostic } from "../spec/index.js";
import type { RunStore, TokenOwner } from "../store/index.js";
import { NotFoundError, TroupeError } from "../errors/index.js";
import { RESPONSES, type RouteKey } from "./api-responses.js";
import { CancelBody, IdParams, MAX_SPEC_CHARS, PoolParams, RecordQuery, routeSchemas, SpecQuery, SubmitBody } from "./api-schemas.js";
import { InvalidWorkflowError, noWorkflow, refusalError, sendError } from "./error-reply.js";
import { registerCredentialRoutes } from "./credential-routes.js";
import { registerListRoute } from "./list-route.js";
import { registerLogsRoute } from "./logs-route.js";
import type { RunChanges } from "./run-changes.js";
import type { RunControl } from "./run-manager.js";
import { registerStreamRoute } from "./stream-route.js";
import { registerChangesRoute } from "./changes-route.js";
import { registerTagRoutes } from "./tag-routes.js";
import { registerUi, type UiOptions } from "./ui-route.js";
import { isFinal, type AttemptRecord, type RunRecord } from "../model/index.js";

export interface AppOptions {
  store: RunStore;
  /** The run manager, or (in the HTTP thread) a proxy for the one in the main thread. */
  manager: RunControl;
  /** Largest request body in bytes (the spec plus variables). */
  bodyLimit?: number;
  /**
   * Each workflow is read (listed, queried, its spec, events and logs) only by its submitter and admins; others get
   * 404, as for no workflow at all. Off by default: as in OSMO, every user sees every workflow.
   */
  privateWorkflows?: boolean;
  /** Told when a run changes (the HTTP thread's): streams that follow a run read on then. Without it, they read every second. */
  changes?: RunChanges;
  /** How often a followed stream reads whatever it was told (default a second; tests make it long to see the notifications work). */
  streamBackstopMs?: number;
  /** Where request lines and the app's errors are logged (the server's log); none without it. */
  logger?: FastifyBaseLogger;
  /** Who a bearer token is (default: the store's tokens). `troupe ui` gives its one-time token here. */
  authenticate?: (token: string) => TokenOwner | undefined;
  /** The web UI at `/` (ui-route.ts): its built files (default dist/ui), and whether its API is read-only (`troupe ui`). */
  ui?: UiOptions;
}

declare module "fastify" {
  interface FastifyRequest {
    owner?: TokenOwner;
  }
}

/**
 * One line per request, when it is answered, with who asked (rather than Fastify's two lines, incoming and completed).
 * The request is logged by util/log.ts's serializer: method and URL, its secrets redacted; no headers, so no token.
 */
class RequestLines extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { req: request, status: reply.statusCode, ms: Math.round(reply.elapsedTime), user: request.owner?.name };
    if (error) reply.log.warn({ ...fields, err: error }, "request failed");
    else reply.log.info(fields, "request");
  }
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { store, manager } = options;
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? MAX_SPEC_CHARS + 1024 * 1024,
    ...(options.logger ? { loggerInstance: options.logger, logController: new RequestLines() } : { logger: false }),
    // The longest id IdParams takes; a longer path parameter gets 414.
    routerOptions: { maxParamLength: 256 },
    // A malformed URL (400) or a path parameter too long (414), answered like every other error.
    frameworkErrors: (error, _request, reply: FastifyReply) => void sendError(reply, error),
  });
  // Response schemas document the API; replies are serialized whole by JSON.stringify, never through them
  // (fast-json-stringify would silently drop any field a schema does not name).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "troupe API", version: "1" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transformObject: (document) => optionalBodies(("openapiObject" in document ? document.openapiObject : {}) as OpenApiPaths),
  });

  // Every error a client can cause is a 4xx with a reason and a stable code; anything else is logged and a 500
  // without internals. Routes throw (a TroupeError of the kind that says which): error-reply.ts answers.
  app.setErrorHandler((error, request, reply) => void sendError(reply, error, request.log));
  app.setNotFoundHandler(
    (request, reply) => void sendError(reply, new NotFoundError("E_NO_ROUTE", `no route ${request.method} ${request.url}`)),
  );

  // A POST without a body (cancel, restart) is one whatever it says its type is: `content-type: application/json`
  // with nothing after the headers is an absent body, not a JSON syntax error.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) =>
    body === "" ? done(null, undefined) : parseJson(request, body as string, done),
  );

  const authenticate = options.authenticate ?? ((token: string) => store.tokens.find(token));
  app.addHook("onRequest", async (request) => {
    // Routes are matched before this hook: a public one is known by its route, whatever the query string says.
    if ((request.routeOptions.config as { public?: boolean }).public) return;
    const header = request.headers.authorization ?? "";
    // RFC 7235: the scheme is case-insensitive, and one or more spaces separate it from the credentials.
    const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const owner = match ? authenticate(match[1]!) : undefined;
    if (!owner)
      throw new TroupeError(
        "E_UNAUTHORIZED",
        match ? "the token is not valid" : "missing bearer token (Authorization: Bearer ...)",
        "unauthorized",
      );
    request.owner = owner;
  });

  /** A route's request schemas and its responses (api-responses.ts), by the key it is registered under. */
  const schemas = (key: RouteKey, parts: Parameters<typeof routeSchemas>[0] = {}) => routeSchemas(parts, RESPONSES[key]);
  const health = schemas("GET /api/health");
  app.get("/api/health", { ...health, schema: { ...health.schema, security: [] }, config: { public: true } }, async () => ({
    status: "OK",
  }));
  app.get("/api/openapi.json", { schema: { hide: true }, config: { public: true } }, async () => app.swagger());

  /** Whose workflows `owner` may read: undefined for everyone's, else the name of the only user (their own). */
  const readableOf = (owner: TokenOwner): string | undefined => (options.privateWorkflows && !owner.admin ? owner.name : undefined);
  /** The workflow an id (or a prefix of one) names among those `owner` may read. */
  const resolveFor = (idOrPrefix: string, owner: TokenOwner): string | undefined => store.resolveRunId(idOrPrefix, readableOf(owner));

  app.post(
    "/api/pool/:pool/workflow",
    schemas("POST /api/pool/:pool/workflow", { params: PoolParams, body: SubmitBody }),
    async (request: FastifyRequest<{ Params: { pool: string }; Body: z.output<typeof SubmitBody> }>, reply) => {
      const body = request.body;
      let submitted = { spec: body.spec ?? "", set: body.set, setString: body.set_string, env: body.set_env, labels: body.labels };
      if (body.workflow_id !== undefined) {
        // A resubmission: the spec that workflow ran (rendered), its environment and labels, under the new ones.
        const source = resolveFor(body.workflow_id, request.owner!);
        const earlier = source === undefined ? undefined : store.submission(source);
        if (!earlier) throw noWorkflow(body.workflow_id);
        const rendered = earlier.renderedSpec !== undefined;
        submitted = {
          spec: earlier.renderedSpec ?? earlier.spec,
          set: rendered ? {} : earlier.set,
          setString: rendered ? {} : earlier.setString,
          env: { ...earlier.env, ...body.set_env },
          labels: { ...earlier.labels, ...body.labels },
        };
      }
      const result = await manager.submit({
        ...submitted,
        user: request.owner!.name,
        pool: request.params.pool,
        dryRun: body.dry_run || body.validation_only,
        priority: body.priority,
      });
      switch (result.kind) {
        case "invalid":
          throw new InvalidWorkflowError("the workflow is not valid", result.diagnostics);
        case "refused":
          throw refusalError(result);
        case "validated":
          return reply.send({
            valid: true,
            name: result.name,
            groups: result.groups,
            tasks: result.tasks,
            plan: result.plan,
            ...warningsOf(result),
          });
        case "submitted":
          return reply.status(201).send({ id: result.id, name: store.getRun(result.id)?.name, ...warningsOf(result) });
      }
    },
  );

  registerListRoute(app, store, readableOf);

  const withRun =
    (handler: (id: string, request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => unknown) =>
    async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
      const id = resolveFor(request.params.id, request.owner!);
      if (!id) throw noWorkflow(request.params.id);
      return handler(id, request, reply);
    };

  // The record of a run that has ended never changes again: it is serialized once (a 10,000-task record is 2 MB).
  const endedRecords = new Map<string, string>();
  app.get(
    "/api/workflow/:id",
    schemas("GET /api/workflow/:id", { params: IdParams, querystring: RecordQuery }),
    withRun((id, request, reply) => {
      if ((request.query as z.output<typeof RecordQuery>).verbose) return reply.send(withAttempts(store.getRun(id)!, store.attempts(id)));
      let text = endedRecords.get(id);
      if (text === undefined) {
        const { status, json } = store.runJson(id)!;
        text = json;
        if (isFinal(status)) {
          endedRecords.set(id, text);
          if (endedRecords.size > 64) endedRecords.delete(endedRecords.keys().next().value!);
        }
      }
      return reply.type("application/json; charset=utf-8").send(text);
    }),
  );
  app.get(
    "/api/workflow/:id/spec",
    schemas("GET /api/workflow/:id/spec", { params: IdParams, querystring: SpecQuery }),
    withRun((id, request, reply) => {
      const submitted = store.submission(id);
      // Runs recorded before the rendered spec was kept have the spec as written only.
      const text = (request.query as z.output<typeof SpecQuery>).template ? submitted?.spec : (submitted?.renderedSpec ?? submitted?.spec);
      return reply.type("text/yaml; charset=utf-8").send(text ?? "");
    }),
  );
  app.get("/api/pool", schemas("GET /api/pool"), async () => ({ pools: (await manager.poolLoads?.()) ?? [] }));
  app.get(
    "/api/workflow/:id/events",
    schemas("GET /api/workflow/:id/events", { params: IdParams }),
    withRun((id) => ({ events: store.transitions(id) })),
  );
  registerLogsRoute(app, store, resolveFor);
  registerStreamRoute(app, store, resolveFor, options.changes, options.streamBackstopMs);
  if (options.changes) registerChangesRoute(app, resolveFor, options.changes);
  /** Refuses (forbidden) `owner` acting on workflow `id` unless they submitted it or are an admin. */
  const checkTheirs = (id: string, owner: TokenOwner, verb: string): void => {
    const user = store.runHeader(id)?.user;
    if (user === owner.name || owner.admin) return;
    throw new TroupeError(
      "E_NOT_YOURS",
      `workflow ${id} was submitted by ${user ?? "someone else"}; only they or an admin can ${verb} it`,
      "forbidden",
    );
  };
  registerCredentialRoutes(app, store);
  registerTagRoutes(app, store, { resolve: resolveFor, readableOf, checkTheirs, changed: (id) => endedRecords.delete(id) });
  app.post(
    "/api/workflow/:id/restart",
    schemas("POST /api/workflow/:id/restart", { params: IdParams }),
    withRun(async (id, request, reply) => {
      checkTheirs(id, request.owner!, "restart");
      const result = await manager.restart(id, request.owner!.name);
      if (result.kind === "submitted") return reply.status(201).send({ id: result.id, restarted: id });
      if (result.kind === "invalid") throw new InvalidWorkflowError("the workflow is no longer valid", result.diagnostics);
      throw refusalError(result);
    }),
  );
  app.post(
    "/api/workflow/:id/cancel",
    schemas("POST /api/workflow/:id/cancel", { params: IdParams, body: CancelBody }),
    withRun(async (id, request, reply) => {
      checkTheirs(id, request.owner!, "cancel");
      const run = store.runHeader(id)!;
      const { force = false, message } = (request.body ?? {}) as Partial<z.output<typeof CancelBody>>;
      const reason = message === undefined ? undefined : `${message} (by ${request.owner!.name})`;
      if (!(await manager.cancel(id, force, reason)))
        throw new TroupeError("E_NOT_RUNNING", `workflow ${id} is not running (${run.status})`, "conflict");
      return reply.status(202).send({ id, canceling: true, force });
    }),
  );
  if (options.ui) await registerUi(app, options.ui);
  return app;
}

/** The record with every attempt of each task (`verbose`), in retry order, as OSMO's verbose query lists retried tasks. */
function withAttempts(record: RunRecord, attempts: readonly AttemptRecord[]): RunRecord {
  const byTask = new Map<string, AttemptRecord[]>();
  for (const a of attempts) byTask.set(`${a.group}\0${a.task}`, [...(byTask.get(`${a.group}\0${a.task}`) ?? []), a]);
  return {
    ...record,
    groups: record.groups.map((group) => ({
      ...group,
      tasks: group.tasks.map((task) => ({
        ...task,
        attempts: (byTask.get(`${group.name}\0${task.name}`) ?? []).map(
          ({ retry_id, status, exit_code, ip, start_time, end_time, reason }) => ({
            retry_id,
            status,
            exit_code,
            ip,
            start_time,
            end_time,
            reason,
          }),
        ),
      })),
    })),
  };
}

type OpenApiPaths = { paths?: Record<string, Record<string, { requestBody?: { required?: boolean; content?: object } }>> };

/**
 * A body none of whose fields is required may be left out (validation takes none as `{}`): say so in the document.
 * Not one marked `x-body-required` (one of its fields is needed, whichever).
 */
function optionalBodies<T extends OpenApiPaths>(document: T): T {
  for (const methods of Object.values(document.paths ?? {}))
    for (const operation of Object.values(methods)) {
      const content = operation.requestBody?.content as
        Record<string, { schema?: { required?: string[]; "x-body-required"?: boolean } }> | undefined;
      const optional = (media: { schema?: { required?: string[]; "x-body-required"?: boolean } }) =>
        !media.schema?.required?.length && !media.schema?.["x-body-required"];
      if (content && Object.values(content).every(optional)) operation.requestBody!.required = false;
    }
  return document;
}

/** A submission's warnings, as the response's `diagnostics`; nothing when it has none. */
function warningsOf(result: { warnings?: Diagnostic[] }): { diagnostics?: Diagnostic[] } {
  return result.warnings && result.warnings.length > 0 ? { diagnostics: result.warnings } : {};
}
