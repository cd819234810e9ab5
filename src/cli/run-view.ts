/**
 * What `troupe run` shows while a workflow runs: task output with a coloured
 * `task |` prefix (as `docker compose up` does), status changes, and on a
 * terminal a status line kept at the bottom; a summary table at the end.
 * Without a terminal: plain lines, no escape codes.
 */
import { StringDecoder } from "node:string_decoder";
import type { EngineEvent } from "../engine/index.js";
import { isFailure, isFinal, type RunRecord } from "../model/index.js";
import type { colorsFor } from "./shared.js";
import { taskReason } from "./task-reasons.js";

type Colors = ReturnType<typeof colorsFor>;

const PALETTE = ["cyan", "magenta", "yellow", "blue", "green", "red"] as const;

export class RunView {
  private readonly partial = new Map<string, string>();
  private readonly decoders = new Map<string, StringDecoder>();
  private readonly prefixes: Map<string, string>;
  private readonly taskStatus = new Map<string, string>();
  private width = 0;
  private footerLines = 0;
  private redrawTimer: NodeJS.Timeout | undefined;
  private readonly groupStatus = new Map<string, string>();
  private readonly groupTasks = new Map<string, string[]>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly c: Colors,
    private readonly live: boolean,
    groups: ReadonlyArray<{ name: string; tasks: readonly string[] }>,
  ) {
    const taskNames = groups.flatMap((g) => g.tasks);
    for (const group of groups) {
      this.groupStatus.set(group.name, "WAITING");
      this.groupTasks.set(group.name, [...group.tasks]);
    }
    this.width = prefixWidth(taskNames);
    this.prefixes = taskPrefixes(taskNames, this.c);
    for (const name of taskNames) this.taskStatus.set(name, "WAITING");
  }

  line(text: string): void {
    this.clearFooter();
    this.out.write(text + "\n");
    this.drawFooter();
  }

  output(task: string, chunk: Buffer): void {
    // A character cut in two between chunks is printed whole.
    let decoder = this.decoders.get(task);
    if (!decoder) this.decoders.set(task, (decoder = new StringDecoder("utf8")));
    const text = (this.partial.get(task) ?? "") + decoder.write(chunk);
    const lines = text.split("\n");
    this.partial.set(task, lines.pop() ?? "");
    if (lines.length === 0) return;
    this.clearFooter();
    for (const line of lines) this.out.write(`${this.prefixes.get(task) ?? `${task} |`} ${line}\n`);
    this.drawFooter();
  }

  event(e: EngineEvent): void {
    if (e.kind === "group" && e.group) {
      this.groupStatus.set(e.group, e.to);
      this.redraw();
    }
    if (e.kind === "task" && e.task) {
      this.taskStatus.set(e.task, e.to);
      // A note (the same status: its data moved) is a line too.
      if (e.to === "RUNNING" || isFinal(e.to) || e.from === e.to) {
        const retry = e.retryId ? ` (retry ${e.retryId})` : "";
        this.line(
          `${this.c.dim(`${e.task.padEnd(this.width)} :`)} ${this.status(e.to)}${retry}${e.to === "RUNNING" && e.from !== "RUNNING" ? "" : this.c.dim(` ${e.reason}`)}`,
        );
      } else {
        this.redraw();
      }
    }
  }

  /** Flush output that did not end with a newline. */
  finish(): void {
    if (this.redrawTimer) clearTimeout(this.redrawTimer);
    this.redrawTimer = undefined;
    for (const [task, rest] of this.partial) if (rest) this.output(task, Buffer.from("\n"));
    this.clearFooter();
  }

  /** Status changes come in bursts: redraw the panel at most every REDRAW_MS. */
  private redraw(): void {
    if (!this.live || this.redrawTimer) return;
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.clearFooter();
      this.drawFooter();
    }, REDRAW_MS);
    this.redrawTimer.unref();
  }

  status(status: string): string {
    if (status === "COMPLETED") return this.c.green(status);
    if (isFailure(status)) return this.c.red(status);
    if (status === "RUNNING") return this.c.cyan(status);
    return this.c.yellow(status);
  }

  private clearFooter(): void {
    if (!this.live || this.footerLines === 0) return;
    // The cursor sits at the end of the panel's last line: back to its first line, then clear below.
    this.out.write(`\r${this.footerLines > 1 ? `\x1b[${this.footerLines - 1}A` : ""}\x1b[0J`);
    this.footerLines = 0;
  }

  /** The live panel under the output: each group and its tasks, or counts when there are many. */
  private drawFooter(): void {
    if (!this.live) return;
    const width = Math.max(40, (this.out.columns ?? 80) - 1);
    const lines: string[] = [];
    if (this.groupStatus.size <= MAX_GROUPS_SHOWN) {
      for (const [group, status] of this.groupStatus) {
        const tasks = (this.groupTasks.get(group) ?? []).map((t) => ({
          text: `${t} ${this.taskStatus.get(t) ?? "?"}`,
          status: this.taskStatus.get(t) ?? "",
        }));
        lines.push(
          this.fit(
            [
              { text: `${group}: `, status: "" },
              { text: status, status },
              { text: "  " + tasks.map((t) => t.text).join(", "), status: "" },
            ],
            width,
          ),
        );
      }
    } else {
      lines.push(this.fit([{ text: `groups: ${countText(this.groupStatus.values())}`, status: "" }], width));
    }
    lines.push(this.fit([{ text: `tasks: ${countText(this.taskStatus.values())}`, status: "" }], width));
    this.out.write(lines.join("\n"));
    this.footerLines = lines.length;
  }

  /** Colour the status words of a line cut to the terminal's width (cut first: escape codes take no columns). */
  private fit(parts: Array<{ text: string; status: string }>, width: number): string {
    let budget = width;
    let out = "";
    for (const part of parts) {
      if (budget <= 0) break;
      const text = part.text.length > budget ? part.text.slice(0, Math.max(0, budget - 1)) + "…" : part.text;
      budget -= text.length;
      out += part.status ? this.status(text) : this.c.dim(text);
    }
    return out;
  }
}

/** How wide the task names before `|` are: the longest, within 4 to 24 columns. */
function prefixWidth(taskNames: readonly string[]): number {
  return Math.min(24, Math.max(4, ...taskNames.map((n) => n.length)));
}

/** Each task's `name |` prefix, padded and coloured as the live view shows task output (and `troupe logs` too). */
export function taskPrefixes(taskNames: readonly string[], c: Colors): Map<string, string> {
  const width = prefixWidth(taskNames);
  return new Map(
    taskNames.map((name, i) => {
      const color = c[PALETTE[i % PALETTE.length] as (typeof PALETTE)[number]];
      return [name, color(`${name.padEnd(width)} |`)];
    }),
  );
}

const REDRAW_MS = 50;

/** Groups and tasks shown one by one in the live panel; beyond this, counts. */
const MAX_GROUPS_SHOWN = 6;

function countText(statuses: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${status} ${n}`).join(", ");
}

function duration(start: string | null, end: string | null): string {
  if (!start || !end) return "-";
  const ms = Date.parse(end) - Date.parse(start);
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : ms < 600_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

/** The table printed when a run ends (and by `troupe query`). */
export function summaryTable(record: RunRecord, c: Colors): string {
  return [...summaryLines(record, c)].join("\n");
}

/**
 * The same table line by line: the cells are made twice (once for the column widths) rather than kept,
 * so that a run of 100,000 tasks is printed without a table of 800,000 strings in memory at its end.
 */
export function* summaryLines(record: RunRecord, c: Colors): Generator<string> {
  const header = ["TASK", "GROUP", "STATUS", "EXIT", "RETRY", "DURATION", "IP", "REASON"];
  const cells = (group: RunRecord["groups"][number], task: RunRecord["groups"][number]["tasks"][number]) => [
    task.name + (task.lead && group.tasks.length > 1 ? " *" : ""),
    group.name,
    task.status,
    task.exit_code === null ? "-" : String(task.exit_code),
    String(task.retry_id),
    duration(task.start_time, task.end_time),
    task.ip ?? "-",
    taskReason(task),
  ];
  const widths = header.map((h) => h.length);
  for (const group of record.groups)
    for (const task of group.tasks) cells(group, task).forEach((cell, i) => (widths[i] = Math.max(widths[i]!, cell.length)));
  const colorStatus = (s: string) => (s === "COMPLETED" ? c.green(s) : isFailure(s) ? c.red(s) : s);
  const line = (row: string[], r: number) =>
    row
      .map((cell, i) => {
        const padded = cell.padEnd(widths[i] ?? 0);
        if (r === 0) return c.bold(padded);
        return i === 2 ? colorStatus(cell) + " ".repeat((widths[i] ?? 0) - cell.length) : padded;
      })
      .join("  ")
      .trimEnd();
  yield `run ${record.id}: ${colorStatus(record.status)} (${duration(record.start_time, record.end_time)})`;
  yield line(header, 0);
  for (const group of record.groups) for (const task of group.tasks) yield line(cells(group, task), 1);
}
