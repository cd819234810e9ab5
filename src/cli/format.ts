/** Human-readable output: compiler-style diagnostics and the plan. */
import type { CompiledGroup, CompiledWorkflow, ResourceDemand } from "../plan/index.js";
import { renderTokenized } from "../plan/index.js";
import type { Diagnostic } from "../spec/index.js";
import { formatBytes } from "../util/units.js";
import type { colorsFor } from "./shared.js";

export { formatBytes };

type Colors = ReturnType<typeof colorsFor>;

/** `FILE:LINE:COL: error E_CODE: message (hint)`, one line per problem. */
export function formatDiagnostic(file: string, d: Diagnostic, c: Colors): string {
  const place = d.line > 0 ? `${file}:${d.line}:${d.column}` : file;
  const severity = d.severity === "error" ? c.red(c.bold("error")) : c.yellow(c.bold("warning"));
  const hint = d.hint ? c.dim(` (${d.hint})`) : "";
  return `${c.bold(place)}: ${severity} ${d.code}: ${d.message}${hint}`;
}

/** `N errors, M warnings`, counting those beyond the listed ones (`omitted`, and not the line that says so). */
export function summarizeDiagnostics(list: readonly Diagnostic[], omitted?: { errors: number; warnings: number }): string {
  const listed = omitted ? list.slice(0, -1) : list;
  const errors = listed.filter((d) => d.severity === "error").length + (omitted?.errors ?? 0);
  const warnings = listed.length + (omitted ? omitted.errors + omitted.warnings : 0) - errors;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(errors, "error")}, ${plural(warnings, "warning")}`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return "none";
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / 1000}s`;
}

export function formatDemand(d: ResourceDemand): string {
  const parts: string[] = [];
  if (d.cpu) parts.push(`cpu ${d.cpu}`);
  if (d.gpu) parts.push(`gpu ${d.gpu}`);
  if (d.memoryBytes) parts.push(`memory ${formatBytes(d.memoryBytes)}`);
  if (d.storageBytes) parts.push(`storage ${formatBytes(d.storageBytes)}`);
  return parts.length ? parts.join(", ") : "no resource requests";
}

export function formatPlan(plan: CompiledWorkflow, c: Colors): string {
  const lines: string[] = [];
  const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  lines.push(`${c.bold(`workflow ${plan.name}`)}: ${count(plan.groups.length, "group")}, ${count(plan.taskCount, "task")}`);
  const timeouts = plan.timeouts;
  if (timeouts.execMs !== undefined || timeouts.queueMs !== undefined) {
    lines.push(`timeouts: exec ${formatDuration(timeouts.execMs)}, queue ${formatDuration(timeouts.queueMs)}`);
  }
  if (plan.pool) lines.push(`pool: ${plan.pool}`);
  for (const group of plan.groups) lines.push("", ...formatGroup(plan, group, c));
  return lines.join("\n");
}

function formatGroup(plan: CompiledWorkflow, group: CompiledGroup, c: Colors): string[] {
  const names = (indices: readonly number[]) => (indices.length ? indices.map((i) => plan.groups[i]?.name ?? "?").join(", ") : "nothing");
  const traits = [group.barrier ? "barrier" : "no barrier", group.ignoreNonleadStatus ? "lead decides" : "any failure fails the group"];
  const lines = [
    `${c.cyan(`[${group.index + 1}]`)} ${c.bold(group.name)}  ${c.dim(traits.join(", "))}`,
    `    waits for: ${names(group.upstream)}`,
  ];
  if (group.downstream.length) lines.push(`    feeds: ${names(group.downstream)}`);
  lines.push(`    needs: ${formatDemand(group.demand)}`);
  for (const task of group.tasks) {
    const marker = task.lead ? c.green("*") : " ";
    const resource = task.resources.name === "default" ? "" : c.dim(`  resource ${task.resources.name} (${formatDemand(task.resources)})`);
    lines.push(`  ${marker} ${task.name}${task.lead ? c.green(" (lead)") : ""}  ${c.dim(task.image)}${resource}`);
    lines.push(`      ${c.dim("$")} ${formatCommandLine([...task.command, ...task.args].map(renderTokenized))}`);
    const only = (regex: string | undefined) => (regex === undefined ? "" : c.dim(`  (only ${regex})`));
    for (const input of task.inputs) {
      if (input.kind === "task") lines.push(`      ${c.dim("<-")} ${input.task}${only(input.regex)}`);
      else if (input.kind === "workflow-task") lines.push(`      ${c.dim("<-")} ${input.workflowId}:${input.task}`);
      else lines.push(`      ${c.dim("<-")} ${input.url}${only(input.regex)}`);
    }
    for (const output of task.outputs) lines.push(`      ${c.dim("->")} ${renderTokenized(output.url)}${only(output.regex)}`);
  }
  return lines;
}

/** A command line as a shell would read it, shortened to one line. */
export function formatCommandLine(argv: readonly string[], width = 100): string {
  const quoted = argv.map((arg) => (/^[\w@%+=:,./{}-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`));
  const line = quoted.join(" ");
  const firstLine = line.split("\n")[0] as string;
  return firstLine.length > width || firstLine !== line ? `${firstLine.slice(0, width)}…` : line;
}
