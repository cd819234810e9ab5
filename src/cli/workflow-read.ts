/** `troupe workflow query|events|logs|spec`: reading one workflow of the server. */
import { Command } from "commander";
import { UsageError } from "../errors/index.js";
import { isFailure, type RunRecord, type TransitionRecord } from "../model/index.js";
import { call, stream } from "./client.js";
import { writeOut } from "./output.js";
import { action, colorsFor, outputOption, parseNonNegativeInt, writeJson, type OutputFormat } from "./shared.js";
import { alignedTable } from "./table.js";
import { printTaskOutput, viewGroups } from "./workflow-stream.js";

const path = (id: string, rest = "") => `/api/workflow/${encodeURIComponent(id)}${rest}`;

export function queryCommand(): Command {
  return new Command("query")
    .description("one workflow: groups, tasks, statuses (the record `troupe run --output json` prints, plus pool and user)")
    .argument("<id>")
    .option("-v, --verbose", "every attempt of every task, not only the latest (retries, reschedules)", false)
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
Examples:
  $ troupe workflow query train-3
  $ troupe workflow query train-3 --verbose --output json`,
    )
    .action(
      action(async (id: string, options: { verbose: boolean; output: OutputFormat }) => {
        const { body } = await call<RunRecord>("GET", path(id, options.verbose ? "?verbose=true" : ""));
        if (options.output === "json") writeJson(body);
        else {
          const { summaryTable } = await import("./run-view.js");
          const c = colorsFor(process.stdout);
          process.stdout.write(summaryTable(body, c) + "\n");
          if (options.verbose) process.stdout.write("\nevery attempt:\n" + attemptTable(body, c) + "\n");
        }
        return 0;
      }),
    );
}

/** A verbose record's attempts, one row each. */
function attemptTable(record: RunRecord, c: ReturnType<typeof colorsFor>): string {
  const rows = [["TASK", "GROUP", "RETRY", "STATUS", "EXIT", "START", "END"]];
  for (const group of record.groups)
    for (const task of group.tasks)
      for (const a of task.attempts ?? [])
        rows.push([
          task.name,
          group.name,
          String(a.retry_id),
          a.status,
          a.exit_code === null ? "-" : String(a.exit_code),
          a.start_time ?? "-",
          a.end_time ?? "-",
        ]);
  const status = (s: string) => (s === "COMPLETED" ? c.green(s) : isFailure(s) ? c.red(s) : s);
  return alignedTable(rows, c, (column, cell) => (column === 3 ? status(cell) : cell));
}

export function eventsCommand(): Command {
  return new Command("events")
    .description("a workflow's status changes, in order")
    .argument("<id>")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  $ troupe workflow events train-3")
    .action(
      action(async (id: string, options: { output: OutputFormat }) => {
        const { body } = await call<{ events: TransitionRecord[] }>("GET", path(id, "/events"));
        if (options.output === "json") writeJson(body.events);
        else {
          const { eventLine } = await import("./history.js");
          process.stdout.write(body.events.map((e) => eventLine(e) + "\n").join(""));
        }
        return 0;
      }),
    );
}

interface LogsOptions {
  task?: string;
  retryId?: number;
  lines?: number;
  follow: boolean;
  error: boolean;
}

export function logsCommand(): Command {
  return new Command("logs")
    .description(
      "the tasks' output: every task's, each line prefixed with its task (as `troupe run` shows it; a workflow of one task: as written), or one task's",
    )
    .argument("<id>")
    .option("-t, --task <name>", "only this task's output, as it wrote it")
    .option("-r, --retry-id <n>", "with --task: the attempt (default: the latest)", parseNonNegativeInt("--retry-id"))
    .option("-n, --lines <n>", "only the last N lines (of each task)", parseNonNegativeInt("-n"))
    .option("-f, --follow", "go on printing as the tasks write, until the workflow (with --task: the attempt) ends", false)
    .option("--error", "the error logs instead: the last lines (100, or -n) of each failed or rescheduled attempt, as OSMO's", false)
    .addHelpText(
      "after",
      `
Examples:
  $ troupe workflow logs train-3
  $ troupe workflow logs train-3 -f
  $ troupe workflow logs train-3 --task trainer --retry-id 1 -n 50
  $ troupe workflow logs train-3 --error`,
    )
    .action(action(logs));
}

async function logs(id: string, options: LogsOptions): Promise<number> {
  const query = new URLSearchParams();
  if (options.task) query.set("task", options.task);
  if (options.retryId !== undefined) query.set("retry_id", String(options.retryId));
  if (options.lines !== undefined && (options.lines > 0 || !options.error)) query.set("n", String(options.lines));
  if (options.error) return copy(path(id, `/error_logs?${query}`));
  if (options.task === undefined) {
    const [{ RunView }, record] = await Promise.all([import("./run-view.js"), call<RunRecord>("GET", path(id))]);
    const groups = viewGroups(record.body);
    // Every task, prefixed: the live view's own prefixes, without its status lines. A workflow of one task has
    // its log as it was written (byte for byte, as with --task).
    if (groups.flatMap((g) => g.tasks).length > 1) {
      if (options.retryId !== undefined) throw new UsageError("--retry-id needs --task: the workflow has several tasks");
      const view = new RunView(process.stdout, colorsFor(process.stdout), false, groups);
      await printTaskOutput(id, view, { follow: options.follow, lines: options.lines });
      return 0;
    }
  }
  if (options.follow) query.set("follow", "true");
  return copy(path(id, `/logs?${query}`));
}

/** Copies a text response to standard output; a reader that went away (`... | head`) ends it, a followed log too. */
async function copy(target: string): Promise<number> {
  const response = await stream(target);
  for await (const chunk of response.body ?? []) if (!(await writeOut(process.stdout, chunk as Uint8Array))) break;
  return 0;
}

export function specCommand(): Command {
  return new Command("spec")
    .description("the spec a workflow ran: after templating, or with --template as it was submitted")
    .argument("<id>")
    .option("--template", "the spec as submitted, before templating", false)
    .addHelpText("after", "\nExamples:\n  $ troupe workflow spec train-3\n  $ troupe workflow spec train-3 --template > train.yaml")
    .action(
      // Copied as sent: a spec written as JSON is YAML too, and stays as it was written.
      action((id: string, options: { template: boolean }) => copy(path(id, options.template ? "/spec?template=true" : "/spec"))),
    );
}
