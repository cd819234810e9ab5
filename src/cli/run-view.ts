/**
 * What `troupe run` shows while a workflow runs: task output with a coloured
 * `task |` prefix (as `docker compose up` does), status changes, and on a
 * terminal a status line kept at the bottom; a summary table at the end.
 * Without a terminal: plain lines, no escape codes.
 */
import type { EngineEvent } from "../engine/index.js";
import type { RunRecord } from "../store/index.js";
import type { colorsFor } from "./shared.js";

type Colors = ReturnType<typeof colorsFor>;

const PALETTE = ["cyan", "magenta", "yellow", "blue", "green", "red"] as const;

export class RunView {
  private readonly partial = new Map<string, string>();
  private readonly prefixes = new Map<string, string>();
  private readonly taskStatus = new Map<string, string>();
  private width = 0;
  private footerShown = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly c: Colors,
    private readonly live: boolean,
    taskNames: readonly string[],
  ) {
    this.width = Math.min(24, Math.max(4, ...taskNames.map((n) => n.length)));
    taskNames.forEach((name, i) => {
      const color = this.c[PALETTE[i % PALETTE.length] as (typeof PALETTE)[number]];
      this.prefixes.set(name, color(`${name.padEnd(this.width)} |`));
      this.taskStatus.set(name, "WAITING");
    });
  }

  line(text: string): void {
    this.clearFooter();
    this.out.write(text + "\n");
    this.drawFooter();
  }

  output(task: string, chunk: Buffer): void {
    const text = (this.partial.get(task) ?? "") + chunk.toString("utf8");
    const lines = text.split("\n");
    this.partial.set(task, lines.pop() ?? "");
    if (lines.length === 0) return;
    this.clearFooter();
    for (const line of lines) this.out.write(`${this.prefixes.get(task) ?? `${task} |`} ${line}\n`);
    this.drawFooter();
  }

  event(e: EngineEvent): void {
    if (e.kind === "task" && e.task) {
      this.taskStatus.set(e.task, e.to);
      if (e.to === "RUNNING" || e.to === "RESCHEDULED" || e.to === "COMPLETED" || e.to.startsWith("FAILED")) {
        const retry = e.retryId ? ` (retry ${e.retryId})` : "";
        this.line(
          `${this.c.dim(`${e.task.padEnd(this.width)} :`)} ${this.status(e.to)}${retry}${e.to === "RUNNING" ? "" : this.c.dim(` ${e.reason}`)}`,
        );
      } else {
        this.clearFooter();
        this.drawFooter();
      }
    }
  }

  /** Flush output that did not end with a newline. */
  finish(): void {
    for (const [task, rest] of this.partial) if (rest) this.output(task, Buffer.from("\n"));
    this.clearFooter();
    this.footerShown = false;
  }

  status(status: string): string {
    if (status === "COMPLETED") return this.c.green(status);
    if (status.startsWith("FAILED")) return this.c.red(status);
    if (status === "RUNNING") return this.c.cyan(status);
    return this.c.yellow(status);
  }

  private clearFooter(): void {
    if (this.live && this.footerShown) this.out.write("\r\x1b[2K");
  }

  private drawFooter(): void {
    if (!this.live) return;
    const counts = new Map<string, number>();
    for (const status of this.taskStatus.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
    const parts = [...counts].map(([status, n]) => `${this.status(status)} ${n}`);
    this.out.write(this.c.dim("tasks: ") + parts.join(this.c.dim(", ")));
    this.footerShown = true;
  }
}

function duration(start: string | null, end: string | null): string {
  if (!start || !end) return "-";
  const ms = Date.parse(end) - Date.parse(start);
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : ms < 600_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

/** The table printed when a run ends (and by `troupe query`). */
export function summaryTable(record: RunRecord, c: Colors): string {
  const rows = [["TASK", "GROUP", "STATUS", "EXIT", "RETRY", "DURATION", "IP"]];
  for (const group of record.groups) {
    for (const task of group.tasks) {
      rows.push([
        task.name + (task.lead && group.tasks.length > 1 ? " *" : ""),
        group.name,
        task.status,
        task.exit_code === null ? "-" : String(task.exit_code),
        String(task.retry_id),
        duration(task.start_time, task.end_time),
        task.ip ?? "-",
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const colorStatus = (s: string) => (s === "COMPLETED" ? c.green(s) : s.startsWith("FAILED") ? c.red(s) : s);
  const lines = rows.map((row, r) =>
    row
      .map((cell, i) => {
        const padded = cell.padEnd(widths[i] ?? 0);
        if (r === 0) return c.bold(padded);
        return i === 2 ? colorStatus(cell) + " ".repeat((widths[i] ?? 0) - cell.length) : padded;
      })
      .join("  ")
      .trimEnd(),
  );
  const header = `run ${record.id}: ${colorStatus(record.status)} (${duration(record.start_time, record.end_time)})`;
  return [header, ...lines].join("\n");
}
