/** `troupe login` and `troupe workflow ...`: the client of `troupe server`. */
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { TroupeError } from "../errors/index.js";
import type { Diagnostic } from "../spec/index.js";
import type { Priority, RunRecord, RunSummary, TransitionRecord } from "../store/index.js";
import { call, configPath, saveConfig, stream } from "./client.js";
import { writeOut } from "./output.js";
import {
  action,
  colorsFor,
  outputOption,
  parseNonNegativeInt,
  readWorkflowFile,
  RUN_EXIT,
  writeJson,
  type OutputFormat,
} from "./shared.js";

const FINAL = /^(COMPLETED|FAILED.*)$/;
/** The store's PRIORITIES (not imported: that would load SQLite into every client command). */
const PRIORITIES = ["HIGH", "NORMAL", "LOW"] as const satisfies readonly Priority[];

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
  const command = new Command("workflow").description("submit workflows to a troupe server and follow them");
  submissionOptions(command.command("submit"), "to run in")
    .description("submit a workflow file; with --wait, follow it to its end (exit codes as `troupe run`)")
    .option("--dry-run", "validate and plan on the server, run nothing", false)
    .option("--wait", "follow the workflow until it ends", false)
    .addOption(outputOption())
    .action(action(submit));
  // The same options as submit, so that the command line checked is the one that will be submitted.
  submissionOptions(command.command("validate"), "it would run in")
    .description("validate and plan a workflow file on the server (its pools, limits and labels), running nothing")
    .addOption(outputOption())
    .action(
      action((file: string, options: Omit<SubmitOptions, "dryRun" | "wait">) => submit(file, { ...options, dryRun: true, wait: false })),
    );
  command
    .command("list")
    .description("workflows on the server, newest first")
    .option("--status <status>")
    .option("--name <name>")
    .option("--user <user>")
    .option("--pool <pool>")
    .addOption(new Option("--priority <priority>").choices(PRIORITIES))
    .option("--label <key=value>", "only workflows with this label (`key` alone: any value); repeatable: all of them", append, [])
    .addOption(new Option("-n, --limit <n>", "at most this many").argParser(parseNonNegativeInt("--limit")).default(20))
    .addOption(outputOption())
    .action(action(list));
  command
    .command("query")
    .description("one workflow: groups, tasks, statuses (the record `troupe run --output json` prints, plus pool and user)")
    .argument("<id>")
    .addOption(outputOption())
    .action(
      action(async (id: string, options: { output: OutputFormat }) => {
        const { body } = await call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`);
        if (options.output === "json") writeJson(body);
        else await printSummary(body);
        return 0;
      }),
    );
  command
    .command("events")
    .description("a workflow's status changes, in order")
    .argument("<id>")
    .addOption(outputOption())
    .action(
      action(async (id: string, options: { output: OutputFormat }) => {
        const { body } = await call<{ events: TransitionRecord[] }>("GET", `/api/workflow/${encodeURIComponent(id)}/events`);
        if (options.output === "json") writeJson(body.events);
        else {
          const { eventLine } = await import("./history.js");
          process.stdout.write(body.events.map((e) => eventLine(e) + "\n").join(""));
        }
        return 0;
      }),
    );
  command
    .command("logs")
    .description("a task's complete output; -f follows it until the task ends")
    .argument("<id>")
    .option("--task <name>", "the task (needed when the workflow has several)")
    .option("--retry-id <n>", "the attempt (default: the latest)", parseNonNegativeInt("--retry-id"))
    .option("-n, --lines <n>", "only the last N lines", parseNonNegativeInt("-n"))
    .option("-f, --follow", "go on printing as the task writes, until it ends", false)
    .action(
      action(async (id: string, options: { task?: string; retryId?: number; lines?: number; follow: boolean }) => {
        const query = new URLSearchParams();
        if (options.task) query.set("task", options.task);
        if (options.retryId !== undefined) query.set("retry_id", String(options.retryId));
        if (options.lines !== undefined) query.set("n", String(options.lines));
        if (options.follow) query.set("follow", "true");
        const response = await stream(`/api/workflow/${encodeURIComponent(id)}/logs?${query}`);
        // A reader that went away (`... | head`) ends the command, a followed log too.
        for await (const chunk of response.body ?? []) if (!(await writeOut(process.stdout, chunk as Uint8Array))) break;
        return 0;
      }),
    );
  command
    .command("spec")
    .description("the spec a workflow was submitted with")
    .argument("<id>")
    .action(
      action(async (id: string) => {
        const { body } = await call<string>("GET", `/api/workflow/${encodeURIComponent(id)}/spec`);
        process.stdout.write(String(body));
        return 0;
      }),
    );
  command
    .command("cancel")
    .description("cancel a running workflow (yours, or anyone's as an admin)")
    .argument("<id>")
    .option("--force", "kill at once instead of SIGTERM and a grace period", false)
    .action(
      action(async (id: string, options: { force: boolean }) => {
        const { status, body } = await call<{ error?: string }>("POST", `/api/workflow/${encodeURIComponent(id)}/cancel`, {
          force: options.force,
        });
        if (status >= 400) throw new TroupeError("E_CANCEL", body.error ?? `HTTP ${status}`, "usage");
        process.stdout.write(`canceling ${id}\n`);
        return 0;
      }),
    );
  command
    .command("restart")
    .description("run a failed workflow again: only its groups that did not complete, reusing the outputs of those that did")
    .argument("<id>")
    .option("--wait", "follow the new run until it ends (exit codes as `troupe run`)", false)
    .addOption(outputOption())
    .action(
      action(async (id: string, options: { wait: boolean; output: OutputFormat }) => {
        const { status, body } = await call<{ id?: string; error?: string }>("POST", `/api/workflow/${encodeURIComponent(id)}/restart`);
        if (status >= 400) throw new TroupeError("E_RESTART", body.error ?? `HTTP ${status}`, "usage");
        return follow(body.id!, options);
      }),
    );
  return command;
}

/** What `workflow submit` and `workflow validate` both take: the file, its pool, variables, priority, labels. */
function submissionOptions(command: Command, poolRole: string): Command {
  return command
    .argument("<file>", "workflow file (`-` for standard input)")
    .option("--pool <pool>", `the pool ${poolRole}`, "default")
    .option("--set <name=value>", "set a template variable; repeatable", collect, {})
    .option("--set-string <name=value>", "set a template variable, always a string; repeatable", collect, {})
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

function append(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface SubmitOptions {
  pool: string;
  set: Record<string, string>;
  setString: Record<string, string>;
  priority?: Priority;
  label?: Record<string, string>;
  dryRun: boolean;
  wait: boolean;
  output: OutputFormat;
}

/**
 * The spec text and variables to send. `localpath` files live beside the spec,
 * on this machine: such a spec is rendered and checked here, its files inlined,
 * and sent as plain YAML (its variables already applied). Others go as written.
 */
async function specToSubmit(
  file: string,
  options: { set: Record<string, string>; setString: Record<string, string> },
): Promise<{ spec: string; set: Record<string, string>; set_string: Record<string, string>; warnedHere?: boolean }> {
  const { MAX_SPEC_BYTES } = await import("../spec/index.js");
  const read = readWorkflowFile(file, MAX_SPEC_BYTES);
  if (read.truncated)
    throw new TroupeError(
      "E_FILE_TOO_LARGE",
      `${file === "-" ? "<stdin>" : file}: more than ${MAX_SPEC_BYTES.toLocaleString("en-US")} bytes (reading stopped there); a workflow file may have at most ${MAX_SPEC_BYTES.toLocaleString("en-US")} (10 MiB)`,
      "invalid-spec",
      "generate large workflows with template loops instead",
    );
  const spec = read.bytes.toString("utf8");
  if (!/\blocalpath\s*:/.test(spec)) return { spec, set: options.set, set_string: options.setString };
  const [{ loadSpecFile }, { inlineLocalFiles, asRenderedTemplate, baseDirOf }, yaml] = await Promise.all([
    import("./load-spec.js"),
    import("../spec/index.js"),
    import("js-yaml"),
  ]);
  const loaded = await loadSpecFile(file, { set: options.set, setString: options.setString, output: "pretty", maxRetries: 0 });
  // Only the client sees where a localpath leads: it says so before sending the file's contents.
  const outside = loaded.diagnostics.filter((d) => d.code === "W_LOCALPATH_OUTSIDE");
  // What is sent is then YAML made here, whose lines are not the file's: fields with no effect are told here.
  const warnings = loaded.spec
    ? loaded.diagnostics.filter((d) => d.code === "W_NOT_IMPLEMENTED" || d.code === "W_LOCALPATH_OUTSIDE")
    : outside;
  if (warnings.length > 0) {
    const { formatDiagnostic } = await import("./format.js");
    for (const d of warnings) process.stderr.write(formatDiagnostic(file, d, colorsFor(process.stderr)) + "\n");
  }
  if (!loaded.spec) return { spec, set: options.set, set_string: options.setString }; // the server reports the problems
  const inlined = inlineLocalFiles(loaded.spec, file === "-" ? process.cwd() : baseDirOf(resolve(file)));
  // Rendered here: the server must not render it again (an inlined file's text is no template).
  return { spec: asRenderedTemplate(yaml.dump(inlined, { lineWidth: -1, noRefs: true })), set: {}, set_string: {}, warnedHere: true };
}

async function submit(file: string, options: SubmitOptions): Promise<number> {
  const { warnedHere, ...sent } = await specToSubmit(file, options);
  const { status, body } = await call<{ id?: string; error?: string; diagnostics?: Diagnostic[]; valid?: boolean }>(
    "POST",
    `/api/pool/${encodeURIComponent(options.pool)}/workflow`,
    { ...sent, dry_run: options.dryRun, priority: options.priority, labels: options.label },
  );
  const progress = options.output === "json" ? process.stderr : process.stdout;
  // An invalid spec's problems, or an accepted one's warnings (fields with no effect yet, among others).
  const told = warnedHere ? (body.diagnostics ?? []).filter((d) => d.code !== "W_NOT_IMPLEMENTED") : body.diagnostics;
  if (told?.length) {
    const { formatDiagnostic } = await import("./format.js");
    for (const d of told) process.stderr.write(formatDiagnostic(file, d, colorsFor(process.stderr)) + "\n");
  }
  if (status >= 400) {
    process.stderr.write(`${file}: ${body.error ?? `HTTP ${status}`}\n`);
    return RUN_EXIT.invalid;
  }
  if (options.dryRun) {
    if (options.output === "json") writeJson(body);
    else progress.write(`${file}: valid\n`);
    return 0;
  }
  return follow(body.id!, options);
}

/** Says the new run's id; with `wait`, follows it to its end and prints its record (exit codes as `troupe run`). */
async function follow(id: string, options: { wait: boolean; output: OutputFormat }): Promise<number> {
  const progress = options.output === "json" ? process.stderr : process.stdout;
  progress.write(`submitted ${id}\n`);
  if (!options.wait) {
    if (options.output === "json") writeJson({ id });
    return 0;
  }
  let record: RunRecord;
  for (;;) {
    record = (await call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`)).body;
    if (FINAL.test(record.status)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (options.output === "json") writeJson(record);
  else await printSummary(record);
  return record.status === "COMPLETED" ? RUN_EXIT.completed : record.status === "FAILED_CANCELED" ? RUN_EXIT.canceled : RUN_EXIT.failed;
}

async function list(options: {
  status?: string;
  name?: string;
  user?: string;
  pool?: string;
  priority?: Priority;
  label: string[];
  limit: number;
  output: OutputFormat;
}): Promise<number> {
  const query = new URLSearchParams({ limit: String(Math.max(1, options.limit)) });
  for (const key of ["status", "name", "user", "pool", "priority"] as const) if (options[key]) query.set(key, options[key]);
  for (const label of options.label) query.append("label", label);
  const { status, body } = await call<{ workflows: RunSummary[]; error?: string }>("GET", `/api/workflow?${query}`);
  if (status >= 400) throw new TroupeError("E_REQUEST", body.error ?? `HTTP ${status}`, "usage");
  if (options.output === "json") writeJson(body.workflows);
  else
    for (const w of body.workflows) {
      const labels = Object.entries(w.labels ?? {}).map(([k, v]) => `${k}=${v}`);
      const columns = [w.id, w.status, w.submit_time, w.user ?? "-", w.pool ?? "-", w.priority ?? "-", `${w.task_count} tasks`];
      process.stdout.write(`${[...columns, ...labels].join("  ")}\n`);
    }
  return 0;
}

async function printSummary(record: RunRecord): Promise<void> {
  const { summaryTable } = await import("./run-view.js");
  process.stdout.write(summaryTable(record, colorsFor(process.stdout)) + "\n");
}
