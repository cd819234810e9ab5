/**
 * troupe's log: JSON lines by pino, for whoever runs troupe (a server's
 * operator, someone debugging a run), never the user's output.
 *
 * `log` is the root; `log.child({ run })` and `log.child({ run, task })` carry
 * a run's or a task's context into every line. Code deep in a runtime, which
 * is handed no logger (the port passes none), uses `log` with the context as
 * fields: `log.warn({ err, run, task }, "could not remove ...")`.
 *
 * Nothing is written, and pino is not even loaded, until `configureLog` names
 * a file: `troupe run` without `--log-file` pays nothing for it (its startup
 * is measured in milliseconds), and a child made before then logs once there
 * is a file. Each thread has its own root (the server's HTTP thread configures
 * its own, onto the same file).
 */
import { createRequire } from "node:module";
import type { Logger, LoggerOptions, pino as Pino } from "pino";
import { LogFile } from "./log-file.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What a line is about: the run, group, task and attempt, the error (`err`, serialized with its stack), anything else. */
export interface LogFields {
  err?: unknown;
  run?: string;
  group?: string;
  task?: string;
  retry?: number;
  [field: string]: unknown;
}

type Method = (fields: LogFields, message: string) => void;

export interface Log {
  trace: Method;
  debug: Method;
  info: Method;
  warn: Method;
  error: Method;
  fatal: Method;
  /** A log whose every line carries `fields` too. */
  child(fields: LogFields): Log;
}

let root: Logger | undefined;
let file: LogFile | undefined;

class ContextLog implements Log {
  /** pino's child for the current root (made when first needed, again if the root changes). */
  private made: { root: Logger; logger: Logger } | undefined;

  constructor(private readonly fields: LogFields) {}

  readonly trace: Method = (fields, message) => this.target()?.trace(fields, message);
  readonly debug: Method = (fields, message) => this.target()?.debug(fields, message);
  readonly info: Method = (fields, message) => this.target()?.info(fields, message);
  readonly warn: Method = (fields, message) => this.target()?.warn(fields, message);
  readonly error: Method = (fields, message) => this.target()?.error(fields, message);
  readonly fatal: Method = (fields, message) => this.target()?.fatal(fields, message);

  child(fields: LogFields): Log {
    return new ContextLog({ ...this.fields, ...fields });
  }

  private target(): Logger | undefined {
    if (root === undefined) return undefined;
    if (this.made?.root !== root) this.made = { root, logger: Object.keys(this.fields).length ? root.child(this.fields) : root };
    return this.made.logger;
  }
}

/** The root log of this thread. */
export const log: Log = new ContextLog({});

/**
 * The handler of a failure troupe goes on without (a clean-up the next sweep redoes, a fallback taken): the error is
 * logged at `level` with `fields` (the run, task, what was being done), and the result is undefined.
 * `promise.catch(tolerated("could not remove the network", { run, network }))`.
 */
export function tolerated(message: string, fields: LogFields = {}, level: "debug" | "warn" = "debug"): (error: unknown) => undefined {
  return (error) => {
    log[level]({ ...fields, err: error }, message);
    return undefined;
  };
}

export interface LogDestination {
  /** The file lines are appended to (made, with its directory, if need be). */
  file: string;
  level: LogLevel;
  /** LogFileOptions.maxBytes: this thread rotates the file (one thread per file should). */
  maxBytes?: number;
  /** In every line: which thread wrote it, when several write one file. */
  thread?: string;
}

/** Fields whose value is a secret wherever they appear in a line: written as "[redacted]". */
const SECRET_FIELDS = ["authorization", "token", "password", "secret"];
const REDACTED = "[redacted]";

/**
 * Starts writing this thread's log to `destination.file`; returns pino's root logger (for Fastify, whose request
 * logs go to the same place). Calling it again moves the log elsewhere.
 */
export function configureLog(destination: LogDestination): Logger {
  // Required when first needed (not imported: the CLI's bundle runs in a script context without dynamic import).
  const pino = createRequire(import.meta.url)("pino") as typeof Pino;
  closeLog();
  file = new LogFile(destination.file, {
    maxBytes: destination.maxBytes,
    // The log must never stop troupe: it says once why it stopped writing.
    onFailure: (error) => process.stderr.write(`troupe: cannot write the log ${destination.file} any more: ${error.message}\n`),
  });
  const options: LoggerOptions = {
    level: destination.level,
    base: { pid: process.pid, ...(destination.thread ? { thread: destination.thread } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "warn" rather than 40: the file is read by people (and grep) as much as by tools.
    formatters: { level: (label) => ({ level: label }) },
    serializers: {
      err: boundedError(pino.stdSerializers.err),
      req: requestFields,
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
    },
    redact: { paths: SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]), censor: REDACTED },
  };
  root = pino(options, file);
  return root;
}

/** Stops writing (lines are written as they come: nothing is left to flush). */
export function closeLog(): void {
  root = undefined;
  file?.close();
  file = undefined;
}

/** The longest text field of a logged error: a failed `podman` may bring its whole output along. */
const MAX_ERROR_FIELD = 4_000;

function boundedError(serialize: (error: Error) => Record<string, unknown>) {
  return (error: unknown): unknown => {
    if (!(error instanceof Error)) return error;
    const fields = serialize(error);
    for (const [key, value] of Object.entries(fields))
      if (typeof value === "string" && value.length > MAX_ERROR_FIELD)
        fields[key] = `${value.slice(0, MAX_ERROR_FIELD)}... (${value.length - MAX_ERROR_FIELD} more characters)`;
    return fields;
  };
}

/** A request as the log shows it: method and URL (secrets in its query taken out), never its headers. */
function requestFields(request: { method?: string; url?: string }): Record<string, unknown> {
  return { method: request.method, url: request.url === undefined ? undefined : withoutSecrets(request.url) };
}

/** `url` with the value of every query parameter whose name says it is a secret (token, key, password...) redacted. */
export function withoutSecrets(url: string): string {
  const query = url.indexOf("?");
  if (query < 0) return url;
  const parts = url
    .slice(query + 1)
    .split("&")
    .map((part) => {
      const eq = part.indexOf("=");
      const name = decodeURIComponentSafely(eq < 0 ? part : part.slice(0, eq));
      return eq >= 0 && /token|key|secret|passw|auth|sig/i.test(name) ? `${part.slice(0, eq)}=${REDACTED}` : part;
    });
  return `${url.slice(0, query)}?${parts.join("&")}`;
}

function decodeURIComponentSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // Not valid percent-encoding: the name as it came, which the test above reads as well.
    return text;
  }
}
