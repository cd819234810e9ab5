/**
 * Where each command's log goes: the server's under its home, always; any
 * other command's nowhere (its output is the user's), unless `--log-file`
 * or TROUPE_LOG_FILE names a file for it.
 */
import { join, resolve } from "node:path";
import { UsageError } from "../errors/index.js";
import { configureLog, LOG_LEVELS, type LogLevel } from "../util/log.js";

/** The server's log in its home: JSON lines, rotated to server.log.1 (util/log-file.ts). */
export function serverLogFile(home: string): string {
  return join(home, "server.log");
}

/** TROUPE_LOG_LEVEL, checked: a level that does not exist is bad usage, naming the ones that do. */
export function logLevelFromEnv(): LogLevel | undefined {
  const value = process.env.TROUPE_LOG_LEVEL;
  if (value === undefined || value === "") return undefined;
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new UsageError(`TROUPE_LOG_LEVEL=${value} is no log level; use one of ${LOG_LEVELS.join(", ")}`);
}

const SIZE_UNITS: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** A size flag: bytes, or a number of Ki, Mi or Gi; at least 4Ki, so that a line fits. */
export function parseLogSize(flag: string) {
  return (value: string): number => {
    const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(value);
    const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2] ?? ""]! : NaN;
    if (!(bytes >= 4096) || !Number.isSafeInteger(bytes))
      throw new UsageError(`${flag} expects a size of at least 4Ki, in bytes or with Ki, Mi or Gi (e.g. 64Mi), got \`${value}\``);
    return bytes;
  };
}

/**
 * A command other than the server logs to `path` (`--log-file`, TROUPE_LOG_FILE) at TROUPE_LOG_LEVEL, default debug:
 * a log asked for is for looking into what happened. Without one it logs nowhere.
 */
export function logToFile(path: string, flag: string): void {
  try {
    configureLog({ file: resolve(path), level: logLevelFromEnv() ?? "debug" });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${flag}: cannot write the log file ${path} (${(error as Error).message})`);
  }
}
