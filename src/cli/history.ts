/** `troupe list`, `troupe query`, `troupe events`: the history kept under $TROUPE_HOME (`troupe logs`: logs.ts). */
import { Command, Option } from "commander";
import { NotFoundError } from "../errors/index.js";
import type { RunStore } from "../store/index.js";
import type { TransitionRecord } from "../model/index.js";
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
    .option("--status <status>", "only runs with this status; FAILED: failed in any way (FAILED_CANCELED, FAILED_UPSTREAM, ...)")
    .option("--name <name>", "only runs whose workflow name contains this (in any case)")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  $ troupe list\n  $ troupe list --status FAILED --name ddp --output json")
    .action(
      action((options: { limit: number; status?: string; name?: string; output: OutputFormat }) =>
        withStore(async (store) => {
          const runs = store.listRuns({ limit: options.limit, status: options.status, name: options.name });
          if (options.output === "json") {
            writeJson(runs);
            return 0;
          }
          const c = colorsFor(process.stdout);
          const rows = [["ID", "STATUS", "SUBMITTED", "TASKS"], ...runs.map((r) => [r.id, r.status, r.submit_time, String(r.task_count)])];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
          // Nothing found: no header, but a line that says what was filtered.
          if (runs.length > 0)
            rows.forEach((row, i) => {
              const line = row
                .map((cell, j) => cell.padEnd(widths[j]!))
                .join("  ")
                .trimEnd();
              process.stdout.write((i === 0 ? c.bold(line) : line) + "\n");
            });
          if (runs.length === 0) {
            const { describeFilters } = await import("../store/index.js");
            const filtered = describeFilters({ status: options.status?.toUpperCase(), name: options.name });
            process.stderr.write(filtered ? `no runs ${filtered}\n` : "no runs recorded yet\n");
          }
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

/** One status change as `troupe events` and `troupe workflow events` print it. */
export function eventLine(e: TransitionRecord): string {
  return `${e.time}  ${[e.group, e.task].filter(Boolean).join("/") || "workflow"}${e.retry_id ? ` (retry ${e.retry_id})` : ""}  ${e.from ?? "-"} -> ${e.to}  ${e.reason}`;
}

export function eventsCommand(): Command {
  return new Command("events")
    .description("a run's status changes in order: the workflow's, each group's and each task attempt's, with times and reasons")
    .argument("<run>", "run id, or a unique prefix of one")
    .option("--task <name>", "only this task's changes")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  $ troupe events ddp-train-3\n  $ troupe events ddp-train-3 --task worker-0 --output json")
    .action(
      action((id: string, options: { task?: string; output: OutputFormat }) =>
        withStore((store) => {
          const runId = resolveRun(store, id);
          let events = store.transitions(runId);
          if (options.task !== undefined) {
            events = events.filter((e) => e.task === options.task);
            if (events.length === 0) throw new NotFoundError("E_TASK_NOT_FOUND", `run ${runId} has no task \`${options.task}\``);
          }
          if (options.output === "json") writeJson(events);
          else process.stdout.write(events.map((e) => eventLine(e) + "\n").join(""));
          return 0;
        }),
      ),
    );
}
