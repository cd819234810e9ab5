/**
 * The few error classes troupe throws across layers, each with a stable code
 * and a kind, and the one place that maps kinds to CLI exit codes and HTTP
 * statuses. User failures (bad input, asking what may not be asked) and
 * system failures (troupe or the machine) differ.
 */

export type ErrorKind =
  /** Bad input: a missing argument, a malformed flag or field. */
  | "usage"
  /** A workflow file that does not validate. */
  | "invalid-spec"
  /** No credentials, or credentials that are not valid. */
  | "unauthorized"
  /** Known, but not allowed to (another user's workflow, what a pool's policy refuses). */
  | "forbidden"
  | "not-found"
  /** The thing asked about is not in a state that allows it (cancel a run that ended, restart one that completed). */
  | "conflict"
  /** Over a limit that frees up with time (runs at once per user). */
  | "limit"
  /** Not now: the server is shutting down. */
  | "unavailable"
  | "system";

export class TroupeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly kind: ErrorKind,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "TroupeError";
  }
}

/** Wrong command-line use: a missing argument, a malformed flag. */
export class UsageError extends TroupeError {
  constructor(message: string, hint?: string) {
    super("E_USAGE", message, "usage", hint);
  }
}

export class NotFoundError extends TroupeError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, "not-found", hint);
  }
}

/**
 * CLI exit codes: 1 = the thing asked about failed (invalid spec, failed run, not there, not in a state for it),
 * 2 = bad usage (what was asked cannot be asked: bad input, no right to), 70 = internal or unavailable.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof TroupeError) {
    switch (error.kind) {
      case "usage":
      case "unauthorized":
      case "forbidden":
        return 2;
      case "invalid-spec":
      case "not-found":
      case "conflict":
      case "limit":
        return 1;
      case "unavailable":
      case "system":
        return 70;
    }
  }
  return 70;
}

/** The HTTP status of the server's answer to a request that ended in `error` (server/error-reply.ts). */
export function httpStatusFor(error: unknown): number {
  if (error instanceof TroupeError) {
    switch (error.kind) {
      case "usage":
      case "invalid-spec":
        return 400;
      case "unauthorized":
        return 401;
      case "forbidden":
        return 403;
      case "not-found":
        return 404;
      case "conflict":
        return 409;
      case "limit":
        return 429;
      case "unavailable":
        return 503;
      case "system":
        return 500;
    }
  }
  return 500;
}
