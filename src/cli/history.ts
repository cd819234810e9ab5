/** `troupe list`, `troupe query`, `troupe logs`: the history kept under $TROUPE_HOME. */
import { existsSync } from "node:fs";
import { Command, Option } from "commander";
import { NotFoundError } from "../errors/index.js";
import type { RunStore } from "../store/index.js";
import { writeOut } from "./output.js";
import { action, colorsFor, outputOption, parseNonNegativeInt, writeJson, type OutputFormat } from "./shared.js";

/** The store (SQLite) and the views load only when a history command runs. */
async function withStore<T>(use: (store: RunStore, views: typeof import("./run-view.js")) => T | Promise<T>): Promise<T> {
  const [{ openStore }, views] = await Promise.all([import("./home.js"), import("./run-view.js")]);
  const { store } = openStore();
  try {
    return await use(store, views);
  } finally {
    store.close();
  }
}

function resolveRun(store: RunStore, id: string): string {
  const resolved = store.resolveRunId(id);
  if (!resolved)
    throw new NotFoundError("E_RUN_NOT_FOUND", `no run \`${id}\` (or the prefix matches several)`, "`troupe list` shows the runs");
  return resolved;
}

export function listCommand(): Command {
  return new Command("list")
    .description("list recorded runs, newest first")
    .addOption(new Option("-n, --limit <n>", "at most this many runs").argParser(parseNonNegativeInt("--limit")).default(20))
    .option("--status <status>", "only runs with this status (e.g. FAILED)")
    .option("--name <name>", "only runs of the workflow with this name")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  $ troupe list\n  $ troupe list --status FAILED --output json")
    .action(
      action((options: { limit: number; status?: string; name?: string; output: OutputFormat }) =>
        withStore((store) => {
          const runs = store.listRuns({ limit: options.limit, status: options.status, name: options.name });
          if (options.output === "json") {
            writeJson(runs);
            return 0;
          }
          const c = colorsFor(process.stdout);
          const rows = [["ID", "STATUS", "SUBMITTED", "TASKS"], ...runs.map((r) => [r.id, r.status, r.submit_time, String(r.task_count)])];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
          rows.forEach((row, i) => {
            const line = row
              .map((cell, j) => cell.padEnd(widths[j]!))
              .join("  ")
              .trimEnd();
            process.stdout.write((i === 0 ? c.bold(line) : line) + "\n");
          });
          if (runs.length === 0) process.stderr.write("no runs recorded yet\n");
          return 0;
        }),
      ),
    );
}

export function queryCommand(): Command {
  return new Command("query")
    .description("show one run: its status, groups and tasks (the same record `troupe run --output json` prints)")
    .argument("<run>", "run id, or a unique prefix of one")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  $ troupe query parallel-tasks-1\n  $ troupe query parallel-tasks-1 --output json")
    .action(
      action((id: string, options: { output: OutputFormat }) =>
        withStore((store, { summaryTable }) => {
          const record = store.getRun(resolveRun(store, id));
          if (!record) throw new NotFoundError("E_RUN_NOT_FOUND", `no run \`${id}\``);
          if (options.output === "json") writeJson(record);
          else process.stdout.write(summaryTable(record, colorsFor(process.stdout)) + "\n");
          return 0;
        }),
      ),
    );
}

export function logsCommand(): Command {
  return new Command("logs")
    .description("print the complete output (stdout and stderr) of a run's tasks")
    .argument("<run>", "run id, or a unique prefix of one")
    .option("--task <name>", "only this task")
    .option("--retry-id <n>", "this attempt (default: the latest)", parseNonNegativeInt("--retry-id"))
    .option("-n, --lines <n>", "only the last N lines of each log", parseNonNegativeInt("-n"))
    .addHelpText(
      "after",
      "\nExamples:\n  $ troupe logs grouped-workflow-communication-1\n  $ troupe logs grouped-workflow-communication-1 --task client -n 20",
    )
    .action(
      action(async (id: string, options: { task?: string; retryId?: number; lines?: number }) => {
        const logs = await import("../store/index.js");
        return withStore(async (store) => {
          const runId = resolveRun(store, id);
          let attempts = store.attempts(runId);
          if (options.task !== undefined) {
            attempts = attempts.filter((a) => a.task === options.task);
            if (attempts.length === 0) throw new NotFoundError("E_TASK_NOT_FOUND", `run ${runId} has no task \`${options.task}\``);
          }
          if (options.retryId !== undefined) {
            attempts = attempts.filter((a) => a.retry_id === options.retryId);
            if (attempts.length === 0) throw new NotFoundError("E_ATTEMPT_NOT_FOUND", `no attempt with retry id ${options.retryId}`);
          } else {
            // The latest attempt of each task.
            const latest = new Map<string, (typeof attempts)[number]>();
            for (const a of attempts) if ((latest.get(a.task)?.retry_id ?? -1) < a.retry_id) latest.set(a.task, a);
            attempts = [...latest.values()];
          }
          const prefix = attempts.length > 1;
          const c = colorsFor(process.stdout);
          // A reader that went away (`troupe logs RUN | head`) ends the command: nothing more to print.
          for (const attempt of attempts) {
            if (!existsSync(attempt.log_path)) continue;
            const text = logs.readFrom(attempt.log_path, logs.tailOffset(attempt.log_path, options.lines)).toString("utf8");
            if (!prefix) {
              if (!(await writeOut(process.stdout, text))) break;
              continue;
            }
            const lines = text.split("\n").slice(0, text.endsWith("\n") ? -1 : undefined);
            if (!(await writeOut(process.stdout, lines.map((line) => `${c.cyan(`${attempt.task} |`)} ${line}\n`).join("")))) break;
          }
          return 0;
        });
      }),
    );
}
