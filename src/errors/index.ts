/**
 * The few error classes troupe throws across layers, each with a stable code,
 * and the one place that maps them to CLI exit codes (and, later, HTTP).
 * User failures (bad input) and system failures (troupe or the machine) differ.
 */

export type ErrorKind = "usage" | "invalid-spec" | "not-found" | "system";

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

/** CLI exit codes: 1 = the thing asked about failed (invalid spec, failed run), 2 = bad usage, 70 = internal. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof TroupeError) {
    switch (error.kind) {
      case "usage":
        return 2;
      case "invalid-spec":
      case "not-found":
        return 1;
      case "system":
        return 70;
    }
  }
  return 70;
}

export function httpStatusFor(error: unknown): number {
  if (error instanceof TroupeError) {
    switch (error.kind) {
      case "usage":
      case "invalid-spec":
        return 400;
      case "not-found":
        return 404;
      case "system":
        return 500;
    }
  }
  return 500;
}
