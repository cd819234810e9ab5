/**
 * The one place a request that failed is answered: every error a route throws
 * (a TroupeError with its stable code, a refusal, Fastify's own for bad JSON,
 * a body too large, a bad path) becomes a status by errors/'s mapping of kinds
 * and a body `{"error": message, "code": stable code}` (an invalid spec's with
 * its diagnostics). Anything else is a 500 that says nothing of the inside.
 */
import type { FastifyBaseLogger, FastifyReply } from "fastify";
import { httpStatusFor, NotFoundError, TroupeError, type ErrorKind } from "../errors/index.js";
import type { Diagnostic } from "../spec/index.js";

/** A submitted spec that does not validate: every problem found in it goes with the error. */
export class InvalidWorkflowError extends TroupeError {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[],
  ) {
    super("E_INVALID_SPEC", message, "invalid-spec");
  }
}

/** No workflow the caller may read is named so (none at all, or, with private workflows, another user's). */
export function noWorkflow(idOrPrefix: string): NotFoundError {
  return new NotFoundError("E_NO_WORKFLOW", `no workflow ${idOrPrefix}`);
}

export function noTask(workflowId: string, task: string): NotFoundError {
  return new NotFoundError("E_NO_TASK", `workflow ${workflowId} has no task ${task}`);
}

export function noAttempt(task: string, retryId: number): NotFoundError {
  return new NotFoundError("E_NO_ATTEMPT", `task ${task} has no attempt with retry id ${retryId}`);
}

/**
 * A submission or restart refused, as data: it is decided in the main thread (or the planning worker) and
 * answered in the HTTP thread, which throws it (refusalError).
 */
export interface Refusal {
  kind: "refused";
  reason: string;
  code: string;
  errorKind: ErrorKind;
}

export function refusal(errorKind: ErrorKind, code: string, reason: string): Refusal {
  return { kind: "refused", reason, code, errorKind };
}

export function refusalError(refused: Refusal): TroupeError {
  return new TroupeError(refused.code, refused.reason, refused.errorKind);
}

/** Fastify's own errors (bad JSON or URL, a body too large, an unsupported media type, a path parameter too long). */
const FRAMEWORK_CODES: Readonly<Record<number, string>> = {
  400: "E_BAD_REQUEST",
  404: "E_NO_ROUTE",
  413: "E_BODY_TOO_LARGE",
  414: "E_URI_TOO_LONG",
  415: "E_UNSUPPORTED_MEDIA_TYPE",
};

export interface ErrorBody {
  error: string;
  code: string;
  diagnostics?: Diagnostic[];
}

const INTERNAL = { status: 500, body: { error: "internal error", code: "E_INTERNAL" } };

/** The status and body of the answer to a request that ended in `error`; `internal` when it is a 500 (to be logged). */
export function errorReply(error: unknown): { status: number; body: ErrorBody; internal?: true } {
  if (error instanceof TroupeError) {
    const status = httpStatusFor(error);
    if (status >= 500 && error.kind !== "unavailable") return { ...INTERNAL, internal: true };
    const diagnostics = error instanceof InvalidWorkflowError ? { diagnostics: error.diagnostics } : {};
    return { status, body: { error: error.message, code: error.code, ...diagnostics } };
  }
  const { statusCode, validation, message } = error as { statusCode?: number; validation?: unknown; message?: string };
  const status = statusCode !== undefined && statusCode >= 400 && statusCode < 500 ? statusCode : validation ? 400 : undefined;
  if (status === undefined) return { ...INTERNAL, internal: true };
  return { status, body: { error: message ?? `HTTP ${status}`, code: FRAMEWORK_CODES[status] ?? "E_REQUEST" } };
}

/** Answers with errorReply(error); a 500's cause goes to the server's log and stderr, not to the client. */
export function sendError(reply: FastifyReply, error: unknown, log?: FastifyBaseLogger): FastifyReply {
  const { status, body, internal } = errorReply(error);
  if (internal) {
    log?.error({ err: error }, "internal error");
    process.stderr.write(`troupe server: internal error: ${(error as Error)?.message ?? String(error)}\n`);
  }
  return reply.status(status).send(body);
}
