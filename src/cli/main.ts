/** The `troupe` command line: one file per command, errors mapped to exit codes here. */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { exitCodeFor, TroupeError } from "../errors/index.js";
import { cancelCommand } from "./cancel.js";
import { credentialCommand } from "./credential.js";
import { eventsCommand, listCommand, queryCommand } from "./history.js";
import { logToFile } from "./log-setup.js";
import { logsCommand } from "./logs.js";
import { restartCommand } from "./restart.js";
import { planCommand } from "./plan.js";
import { runCommand } from "./run.js";
import { schemaCommand } from "./schema.js";
import { guardOutputs } from "./output.js";
import { colorsFor, exitCodeOf } from "./shared.js";
import { serverCommand } from "./server.js";
import { uiCommand } from "./ui.js";
import { validateCommand } from "./validate.js";
import { loginCommand, workflowCommand } from "./workflow.js";

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

export function buildProgram(): Command {
  const program = new Command("troupe")
    .description("Run OSMO-compatible workflows: parallel tasks, groups that talk over the network, data passed between them.")
    .version(version)
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Examples:
  $ troupe validate examples/parallel_tasks.yaml
  $ troupe plan examples/group_tasks_communication.yaml`,
    );
  for (const command of [
    validateCommand(),
    planCommand(),
    runCommand(),
    listCommand(),
    queryCommand(),
    logsCommand(),
    eventsCommand(),
    cancelCommand(),
    restartCommand(),
    schemaCommand(),
    serverCommand(),
    uiCommand(),
    credentialCommand(),
    loginCommand(),
    workflowCommand(),
  ])
    program.addCommand(command);
  const everywhere = (c: Command): void => {
    c.exitOverride().showHelpAfterError("(run with --help for usage)");
    c.commands.forEach(everywhere);
  };
  program.commands.forEach(everywhere);
  return program.exitOverride();
}

/** Runs the CLI and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  guardOutputs();
  const program = buildProgram();
  try {
    // Any command's log, for looking into it (the server keeps its own under its home).
    if (process.env.TROUPE_LOG_FILE) logToFile(process.env.TROUPE_LOG_FILE, "TROUPE_LOG_FILE");
    // `--log-file` (run, restart): before the action, whose first steps (the engine's check) log already.
    program.hook("preAction", (_program, command) => {
      const { logFile } = command.opts<{ logFile?: string }>();
      if (logFile !== undefined) logToFile(logFile, "--log-file");
    });
    await program.parseAsync(argv);
    return exitCodeOf(program);
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
    return 2;
  }
  const c = colorsFor(process.stderr);
  if (error instanceof TroupeError) {
    process.stderr.write(`${c.red(c.bold("error"))} ${error.code}: ${error.message}${error.hint ? c.dim(` (${error.hint})`) : ""}\n`);
  } else {
    process.stderr.write(
      `${c.red(c.bold("internal error"))}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.stderr.write("this is a bug in troupe; please report it with the workflow file that caused it\n");
  }
  return exitCodeFor(error);
}
