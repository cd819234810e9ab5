/**
 * `troupe workflow list`: the server's workflows, filtered as OSMO's list
 * filters them (by default the caller's own; `--all-users` everyone's), in
 * an aligned table with a header: the newest `--limit`, the latest at the
 * bottom (`--order asc`, OSMO's default) or at the top (`--order desc`).
 */
import { Command, Option } from "commander";
import { TroupeError, UsageError } from "../errors/index.js";
import { isFailure, type Priority, type RunSummary } from "../model/index.js";
import { call } from "./client.js";
import { action, colorsFor, outputOption, parseNonNegativeInt, writeJson, type OutputFormat } from "./shared.js";
import { alignedTable, plural } from "./table.js";

interface ListOptions {
  status?: string;
  name?: string;
  user: string[];
  allUsers?: boolean;
  pool?: string;
  priority?: Priority;
  label: string[];
  noLabel: string[];
  tags: string[];
  submittedAfter?: string;
  submittedBefore?: string;
  limit: number;
  count?: number;
  offset: number;
  order: "asc" | "desc";
  output: OutputFormat;
}

const append = (value: string, previous: string[]): string[] => [...previous, value];

export function listCommand(priorities: readonly Priority[]): Command {
  return new Command("list")
    .description("workflows on the server: by default your own (--user, --all-users for others'), the newest --limit of them")
    .option("-s, --status <status>", "only workflows with this status")
    .option("--name <name>", "only workflows of this name")
    .option("-u, --user <user>", "only workflows this user submitted; repeatable: any of them", append, [])
    .option("-a, --all-users", "every user's workflows (not with --user)")
    .option("-p, --pool <pool>", "only workflows of this pool")
    .addOption(new Option("--priority <priority>", "only workflows of this priority").choices(priorities))
    .option(
      "--label <key=selector>",
      "only workflows whose label matches: a value, * for any characters, (a|b) for either, e.g. project=(sim_*|hil_*); `key` alone: any value; repeatable: all of them",
      append,
      [],
    )
    .addOption(noLabelOption())
    .option("--tags <tag>", "only workflows with this tag; repeatable: any of them", append, [])
    .option("--submitted-after <date>", "only workflows submitted on or after this day (YYYY-MM-DD, local time)")
    .option("--submitted-before <date>", "only workflows submitted before this day (YYYY-MM-DD, local time)")
    .addOption(new Option("-n, --limit <n>", "at most this many").argParser(parseNonNegativeInt("--limit")).default(20))
    .addOption(new Option("-c, --count <n>", "the same as --limit (OSMO's name)").argParser(parseNonNegativeInt("--count")))
    .addOption(
      new Option("--offset <n>", "skip the newest N first (with --limit: pages)").argParser(parseNonNegativeInt("--offset")).default(0),
    )
    .addOption(
      new Option("--order <order>", "asc: the latest at the bottom (as OSMO); desc: the latest at the top")
        .choices(["asc", "desc"])
        .default("asc"),
    )
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
Examples:
  $ troupe workflow list
  $ troupe workflow list --all-users --status RUNNING
  $ troupe workflow list --label 'project=(sim_*|hil_*)' --no-label ticket --submitted-after 2026-05-01
  $ troupe workflow list --limit 20 --offset 20 --order desc`,
    )
    .action(action(list));
}

/** OSMO's `--no-label KEY`; commander would take it for the negation of --label, which it is not. */
function noLabelOption(): Option {
  const option = new Option("--no-label <key>", "only workflows without this label key; repeatable").argParser(append).default([]);
  option.negate = false;
  return option;
}

/** Local midnight of a YYYY-MM-DD day, as ISO 8601 (OSMO's dates are days in the user's time zone). */
function dayStart(flag: string, day: string): string {
  const match = /^(\d{4})-(\d\d)-(\d\d)$/.exec(day);
  const date = match ? new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : undefined;
  if (!date || date.getDate() !== Number(match![3]) || date.getMonth() !== Number(match![2]) - 1)
    throw new UsageError(`${flag} expects a day as YYYY-MM-DD, got \`${day}\``, `for example ${flag} 2026-05-03`);
  return date.toISOString();
}

async function list(options: ListOptions): Promise<number> {
  if (options.allUsers && options.user.length > 0) throw new UsageError("--user and --all-users cannot be given together");
  const limit = options.count ?? options.limit;
  const query = new URLSearchParams({ limit: String(Math.max(1, limit)), offset: String(options.offset), order: "desc" });
  for (const key of ["status", "name", "pool", "priority"] as const) if (options[key]) query.set(key, options[key]);
  for (const user of options.user) query.append("user", user);
  if (options.allUsers) query.set("all_users", "true");
  for (const label of options.label) query.append("label", label);
  for (const key of options.noLabel) query.append("no_label", key);
  for (const tag of options.tags) query.append("tag", tag);
  const after = options.submittedAfter === undefined ? undefined : dayStart("--submitted-after", options.submittedAfter);
  const before = options.submittedBefore === undefined ? undefined : dayStart("--submitted-before", options.submittedBefore);
  if (after !== undefined && before !== undefined && after > before)
    throw new UsageError(`--submitted-before (${options.submittedBefore}) is before --submitted-after (${options.submittedAfter})`);
  if (after !== undefined) query.set("since", after);
  if (before !== undefined) query.set("until", before);
  const { status, body } = await call<{ workflows: RunSummary[]; error?: string; code?: string }>("GET", `/api/workflow?${query}`);
  if (status >= 400) throw new TroupeError(body.code ?? "E_REQUEST", body.error ?? `HTTP ${status}`, "usage");
  // The newest, as the server gives them; asc shows them oldest first, the latest at the bottom.
  const workflows = options.order === "asc" ? [...body.workflows].reverse() : body.workflows;
  if (options.output === "json") writeJson(workflows);
  else if (workflows.length === 0) process.stdout.write(`no workflows match: ${describeFilters(options)}\n`);
  else process.stdout.write(workflowTable(workflows) + "\n");
  return 0;
}

function workflowTable(workflows: readonly RunSummary[]): string {
  const c = colorsFor(process.stdout);
  const rows = [["ID", "STATUS", "SUBMITTED", "USER", "POOL", "PRIORITY", "TASKS", "LABELS", "TAGS"]];
  for (const w of workflows)
    rows.push([
      w.id,
      w.status,
      w.submit_time.replace(/\.\d+Z$/, "Z"),
      w.user ?? "-",
      w.pool ?? "-",
      w.priority ?? "-",
      plural(w.task_count, "task"),
      Object.entries(w.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "-",
      (w.tags ?? []).join(",") || "-",
    ]);
  const status = (s: string) => (s === "COMPLETED" ? c.green(s) : isFailure(s) ? c.red(s) : s === "RUNNING" ? c.cyan(s) : s);
  return alignedTable(rows, c, (column, cell) => (column === 1 ? status(cell) : cell));
}

/** What an empty list was filtered by, so that "none match" is not taken for "none at all". */
function describeFilters(options: ListOptions): string {
  const filters = [
    options.allUsers
      ? "any user"
      : options.user.length > 0
        ? `submitted by ${options.user.join(" or ")}`
        : "submitted by you (--all-users: by anyone)",
    options.status && `status ${options.status}`,
    options.name && `name ${options.name}`,
    options.pool && `pool ${options.pool}`,
    options.priority && `priority ${options.priority}`,
    ...options.label.map((l) => `label ${l}`),
    ...options.noLabel.map((k) => `no label ${k}`),
    options.tags.length > 0 && `tag ${options.tags.join(" or ")}`,
    options.submittedAfter && `submitted on or after ${options.submittedAfter}`,
    options.submittedBefore && `submitted before ${options.submittedBefore}`,
    options.offset > 0 && `after the newest ${options.offset}`,
  ].filter(Boolean);
  return filters.join(", ");
}
