/**
 * `troupe workflow submit|validate|restart`: sending a workflow file (or, as
 * OSMO's submit does, the id of a workflow to run again) to the server, and
 * with --wait following the new run as `troupe run` shows a local one.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { TroupeError, UsageError } from "../errors/index.js";
import type { Diagnostic } from "../spec/index.js";
import { isFailure, isFinal, type Priority, type RunRecord } from "../model/index.js";
import { call } from "./client.js";
import { colorsFor, readWorkflowFile, RUN_EXIT, writeJson, type OutputFormat } from "./shared.js";
import { pollUntilEnded, viewGroups, watchRun } from "./workflow-stream.js";

export interface SubmitOptions {
  pool?: string;
  set: Record<string, string>;
  setString: Record<string, string>;
  setEnv: Record<string, string>;
  priority?: Priority;
  label?: Record<string, string>;
  dryRun: boolean;
  wait: boolean;
  output: OutputFormat;
}

/** How many of a failed task's last lines `--wait` shows after the summary. */
const FAILED_TAIL_LINES = 20;

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

/** A FILE argument that is no file but may name a workflow on the server: OSMO's submit runs that workflow's spec again. */
function mayBeWorkflowId(file: string): boolean {
  return file !== "-" && !existsSync(file) && !file.includes("/") && !/\.ya?ml$/i.test(file);
}

export async function submit(file: string, options: SubmitOptions): Promise<number> {
  const resubmit = mayBeWorkflowId(file);
  let what: Record<string, unknown>;
  let warnedHere = false;
  let pool = options.pool;
  if (resubmit) {
    if (options.dryRun)
      throw new TroupeError(
        "E_FILE_NOT_FOUND",
        `${file}: no such file (a workflow's id is submitted again, never validated or dry-run)`,
        "usage",
      );
    const refused = [Object.keys(options.set).length > 0 && "--set", Object.keys(options.setString).length > 0 && "--set-string"].filter(
      Boolean,
    );
    if (refused.length > 0)
      throw new UsageError(
        `${file} is no file: submitting workflow ${file} again runs its spec as rendered, so ${refused.join(" and ")} cannot be given`,
      );
    // It runs again in its own pool unless told otherwise.
    if (pool === undefined) pool = await workflowPool(file);
    what = { workflow_id: file };
  } else {
    const { warnedHere: told, ...sent } = await specToSubmit(file, options);
    what = sent;
    warnedHere = told === true;
  }
  const { status, body } = await call<{ id?: string; error?: string; diagnostics?: Diagnostic[]; valid?: boolean }>(
    "POST",
    `/api/pool/${encodeURIComponent(pool ?? "default")}/workflow`,
    { ...what, set_env: options.setEnv, dry_run: options.dryRun, priority: options.priority, labels: options.label },
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
  return follow(body.id!, options, resubmit ? `submitted ${body.id} (the spec of ${file} again)` : undefined);
}

/** The pool workflow `id` ran in; a name that is no workflow either says so as both. */
async function workflowPool(id: string): Promise<string | undefined> {
  try {
    return (await call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`)).body.pool;
  } catch (error) {
    if (error instanceof TroupeError && error.kind === "not-found")
      throw new TroupeError("E_FILE_NOT_FOUND", `${id}: no such file, nor a workflow on the server`, "usage");
    throw error;
  }
}

export async function restart(id: string, options: { wait: boolean; output: OutputFormat }): Promise<number> {
  const { status, body } = await call<{ id?: string; error?: string; code?: string }>(
    "POST",
    `/api/workflow/${encodeURIComponent(id)}/restart`,
  );
  if (status >= 400) throw new TroupeError(body.code ?? "E_RESTART", body.error ?? `HTTP ${status}`, "usage");
  return follow(body.id!, options, `submitted ${body.id} (a restart of ${id})`);
}

/**
 * Says the new run's id; with `wait`, shows it as `troupe run` does (status changes, every task's output with
 * its prefix, the summary, and a failed run's failed tasks' last lines), exit codes as `troupe run`.
 */
async function follow(id: string, options: { wait: boolean; output: OutputFormat }, said = `submitted ${id}`): Promise<number> {
  const json = options.output === "json";
  const progress = json ? process.stderr : process.stdout;
  progress.write(`${said}\n`);
  if (!options.wait) {
    if (json) writeJson({ id });
    return 0;
  }
  const [{ RunView, summaryTable }, start] = await Promise.all([
    import("./run-view.js"),
    call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`),
  ]);
  const c = colorsFor(progress);
  const view = new RunView(progress, c, !json && progress.isTTY === true, viewGroups(start.body));
  const onSignal = () => {
    view.finish();
    progress.write(`\nstopped following ${id}; it goes on on the server (\`troupe workflow cancel ${id}\` ends it)\n`);
    process.exit(RUN_EXIT.canceled);
  };
  process.once("SIGINT", onSignal);
  let ended: string | undefined;
  try {
    ended = await watchRun(id, view);
  } finally {
    process.off("SIGINT", onSignal);
    view.finish();
  }
  if (ended === undefined) progress.write(`troupe: the server's stream of ${id} broke off; waiting for its end\n`);
  let record =
    ended === undefined ? await pollUntilEnded(id) : (await call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`)).body;
  // The stream's last word may come before the record says so (the store's writer commits it a moment later).
  if (!isFinal(record.status)) record = await pollUntilEnded(id);
  if (json) writeJson(record);
  else process.stdout.write("\n" + summaryTable(record, c) + "\n");
  if (isFailure(record.status)) await showFailedTails(id, json ? process.stderr : process.stdout);
  return record.status === "COMPLETED" ? RUN_EXIT.completed : record.status === "FAILED_CANCELED" ? RUN_EXIT.canceled : RUN_EXIT.failed;
}

/** The last lines of each failed attempt (the server's error logs), under the summary of a failed run. */
async function showFailedTails(id: string, out: NodeJS.WriteStream): Promise<void> {
  const { body } = await call<string>("GET", `/api/workflow/${encodeURIComponent(id)}/error_logs?n=${FAILED_TAIL_LINES}`);
  const text = String(body);
  if (text === "") return;
  out.write(`\nthe last lines of the failed tasks (\`troupe workflow logs ${id} --error\`):\n${text}`);
}
