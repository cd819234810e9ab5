/**
 * A credential's secret in bwrap's environment without it being on bwrap's
 * command line, which every user of the machine may read (/proc/PID/cmdline):
 * bwrap takes those `--setenv` arguments from a file descriptor instead
 * (`--args FD`), which a small shell opens on a 0600 file before it execs bwrap.
 */
import type { SandboxSpec } from "./sandbox.js";
import { bwrapArguments } from "./sandbox-commands.js";

/** The fd a wrapping shell opens the hidden variables' file on for bwrap (above the protocol's 3-5). */
export const HIDDEN_ARGS_FD = 9;

/**
 * bwrap's command line with the variables of `env` whose values are secrets
 * (a credential's) taken out of it: they go, as `--setenv` arguments, into
 * `hiddenArgs`, for the caller to write to `argsFile` (0600), which a shell
 * opens on HIDDEN_ARGS_FD for bwrap. Without such variables, bwrap as it is.
 */
export function bwrapCommand(
  spec: SandboxSpec,
  secrets: readonly string[] | undefined,
  argsFile: string,
): { argv: string[]; hiddenArgs?: string } {
  const values = new Set(secrets ?? []);
  const keys = new Set(Object.keys(spec.env).filter((key) => values.has(spec.env[key]!)));
  if (keys.size === 0) return { argv: ["bwrap", ...bwrapArguments(spec)] };
  const fields = [...keys].flatMap((key) => ["--setenv", key, spec.env[key]!]);
  return {
    argv: ["sh", "-c", `exec "$@" ${HIDDEN_ARGS_FD}<"$0"`, argsFile, "bwrap", ...bwrapArguments(spec, { fd: HIDDEN_ARGS_FD, keys })],
    hiddenArgs: fields.map((field) => `${field}\0`).join(""),
  };
}
