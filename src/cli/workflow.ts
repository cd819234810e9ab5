/** `troupe login` and `troupe workflow ...`: the client of `troupe server`, one file per concern (workflow-*.ts). */
import { Command, Option } from "commander";
import { TroupeError } from "../errors/index.js";
import { PRIORITIES } from "../model/index.js";
import { call, configPath, saveConfig } from "./client.js";
import { action, outputOption, setEnvOption, type OutputFormat } from "./shared.js";
import { cancelCommand, tagCommand } from "./workflow-change.js";
import { listCommand } from "./workflow-list.js";
import { eventsCommand, logsCommand, queryCommand, specCommand } from "./workflow-read.js";
import { restart, submit, type SubmitOptions } from "./workflow-submit.js";

export function loginCommand(): Command {
  return new Command("login")
    .description("remember a troupe server and your token for the workflow commands")
    .argument("<url>", "the server, e.g. http://127.0.0.1:8080")
    .requiredOption("--token <token>", "your API token (`troupe server token create NAME` on the server)")
    .addHelpText(
      "after",
      `
Saved in $TROUPE_HOME/client.json when TROUPE_HOME is set, else in $XDG_CONFIG_HOME/troupe/client.json
(default ~/.config/troupe/client.json), readable only by you. TROUPE_SERVER and TROUPE_TOKEN override it.

Example:
  $ troupe login http://127.0.0.1:8080 --token trp_...`,
    )
    .action(
      action(async (url: string, options: { token: string }) => {
        const config = { server: url.replace(/\/+$/, ""), token: options.token };
        await call("GET", "/api/workflow?limit=1", undefined, config);
        saveConfig(config);
        process.stdout.write(`logged in to ${config.server} (saved in ${configPath()})\n`);
        return 0;
      }),
    );
}

export function workflowCommand(): Command {
  const command = new Command("workflow").description("submit workflows to a troupe server and follow them").addHelpText(
    "after",
    `
Examples:
  $ troupe login http://127.0.0.1:8080 --token trp_...
  $ troupe workflow submit examples/parallel_tasks.yaml --wait
  $ troupe workflow list --status FAILED`,
  );
  submissionOptions(command.command("submit"), "to run in")
    .description(
      "submit a workflow file, or the id of a workflow to run its spec again as a new one; with --wait, follow it as `troupe run` shows a run (exit codes as `troupe run`)",
    )
    .option("--dry-run", "validate and plan on the server, run nothing", false)
    .option("--wait", "follow the workflow until it ends: status changes, every task's output, the summary", false)
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
Examples:
  $ troupe workflow submit examples/parallel_tasks.yaml --wait
  $ troupe workflow submit train.yaml --pool gpu --set epochs=3 --set-env WANDB_MODE=offline --label team=vision
  $ troupe workflow submit train-3 --wait          # train-3's spec again, as a new workflow`,
    )
    .action(action(submit));
  // The same options as submit, so that the command line checked is the one that will be submitted.
  submissionOptions(command.command("validate"), "it would run in")
    .description("validate and plan a workflow file on the server (its pools, limits and labels), running nothing")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  $ troupe workflow validate train.yaml --pool gpu --set epochs=3")
    .action(
      action((file: string, options: Omit<SubmitOptions, "dryRun" | "wait">) => submit(file, { ...options, dryRun: true, wait: false })),
    );
  command.addCommand(listCommand(PRIORITIES));
  command.addCommand(queryCommand());
  command.addCommand(eventsCommand());
  command.addCommand(logsCommand());
  command.addCommand(specCommand());
  command.addCommand(cancelCommand());
  command.addCommand(tagCommand());
  command
    .command("restart")
    .description("run a failed workflow again: only its groups that did not complete, reusing the outputs of those that did")
    .argument("<id>")
    .option("--wait", "follow the new run until it ends (as submit --wait; exit codes as `troupe run`)", false)
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  $ troupe workflow restart train-3 --wait")
    .action(action((id: string, options: { wait: boolean; output: OutputFormat }) => restart(id, options)));
  return command;
}

/** What `workflow submit` and `workflow validate` both take: the file, its pool, variables, environment, priority, labels. */
function submissionOptions(command: Command, poolRole: string): Command {
  command
    .argument("<file>", "workflow file (`-` for standard input), or for submit the id of a workflow to submit again")
    .option("-p, --pool <pool>", `the pool ${poolRole} (default: default; a workflow submitted again: its own)`)
    .option("--set <name=value>", "set a template variable; repeatable", collect, {})
    .option("--set-string <name=value>", "set a template variable, always a string; repeatable", collect, {});
  return setEnvOption(command)
    .addOption(
      new Option("--priority <priority>", "while a higher one waits for the pool, lower ones start nothing new")
        .choices(PRIORITIES)
        .default("NORMAL"),
    )
    .option("--label <key=value>", "a label for the workflow (Kubernetes-style); repeatable", collect, {});
}

function collect(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new TroupeError("E_USAGE", `expected NAME=VALUE, got \`${value}\``, "usage");
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
