/** What every command shares: spec flags, output format, reading the spec file, printing. */
import { Option, type Command } from "commander";
import pc from "picocolors";
import { TroupeError, UsageError } from "../errors/index.js";
import { parseDuration } from "../model/index.js";
import { readBounded, type BoundedRead } from "./read-bounded.js";

export type OutputFormat = "pretty" | "json";

/** Exit codes of `troupe run` and `troupe workflow submit --wait`. */
export const RUN_EXIT = { completed: 0, failed: 1, invalid: 2, canceled: 130 } as const;

export interface SpecOptions {
  set: Record<string, string>;
  setString: Record<string, string>;
  output: OutputFormat;
  maxRetries: number;
}

function collectAssignment(flag: string) {
  return (value: string, previous: Record<string, string> = {}): Record<string, string> => {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} expects NAME=VALUE, got \`${value}\``, `for example ${flag} replicas=4`);
    return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
  };
}

/**
 * `--set-env KEY=VALUE`, repeatable: environment set in every task (OSMO's flag). Names and values are checked
 * where they are used (plan's checkEnvName: `troupe run`, the server), not here: every command loads this file.
 */
export function setEnvOption(command: Command): Command {
  return command.option(
    "--set-env <key=value>",
    "set an environment variable in every task, over the task's own; repeatable",
    collectAssignment("--set-env"),
    {},
  );
}

/** The spec flags; `outputs`: the output formats the command offers (`plan` draws graphs too). */
export function addSpecOptions(command: Command, outputs: readonly string[] = OUTPUT_FORMATS): Command {
  return command
    .option("--set <name=value>", "set a template variable (numbers become numbers); repeatable", collectAssignment("--set"), {})
    .option("--set-string <name=value>", "set a template variable, always as a string; repeatable", collectAssignment("--set-string"), {})
    .option(
      "--max-retries <n>",
      "the retry limit the workflow will run with (RESCHEDULE warnings)",
      parseNonNegativeInt("--max-retries"),
      0,
    )
    .addOption(outputOption(outputs));
}

const OUTPUT_FORMATS: readonly OutputFormat[] = ["pretty", "json"];

export function outputOption(choices: readonly string[] = OUTPUT_FORMATS): Option {
  return new Option("-o, --output <format>", "output format").choices(choices).default("pretty");
}

/**
 * The bytes of a command's FILE argument (`-`: standard input), up to one past `maxBytes` (the rest is
 * not read). A FILE that cannot be read (none, a directory, no permission) is bad usage, exit 2, whichever
 * command was given it.
 */
export function readWorkflowFile(file: string, maxBytes: number): BoundedRead {
  try {
    return readBounded(file, maxBytes);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new TroupeError("E_FILE_NOT_FOUND", `${file}: no such file`, "usage");
    if (code === "EISDIR") throw new TroupeError("E_NOT_A_FILE", `${file} is a directory, not a workflow file`, "usage");
    throw new TroupeError("E_FILE_UNREADABLE", `${file}: cannot read (${code ?? String(error)})`, "usage");
  }
}

/** A duration flag, `<int><s|m|h|d>` as the spec's timeouts (a bare integer is seconds), in milliseconds. */
export function parseDurationFlag(flag: string) {
  return (value: string): number => {
    const parsed = parseDuration(value);
    if (!parsed.ok) throw new UsageError(`${flag} ${parsed.reason}, got \`${value}\``);
    return parsed.value;
  };
}

export function parseNonNegativeInt(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new UsageError(`${flag} expects a whole number, got \`${value}\``);
    return Number(value);
  };
}

export function colorsFor(stream: NodeJS.WriteStream) {
  const force = process.env.FORCE_COLOR;
  if (process.env.NO_COLOR || force === "0" || force === "false") return pc.createColors(false);
  const enabled = (force !== undefined && force !== "") || stream.isTTY === true;
  return pc.createColors(enabled);
}

export function writeJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

const exitCodes = new WeakMap<Command, number>();

function rootOf(command: Command): Command {
  let current = command;
  while (current.parent) current = current.parent;
  return current;
}

/**
 * Wraps a command's action so that the exit code it returns reaches `main`
 * (commander ignores action return values).
 */
export function action<A extends unknown[]>(run: (...args: A) => Promise<number> | number) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    exitCodes.set(rootOf(command), await run(...(args.slice(0, -1) as A)));
  };
}

export function exitCodeOf(program: Command): number {
  return exitCodes.get(program) ?? 0;
}
