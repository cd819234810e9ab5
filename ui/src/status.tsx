/** Statuses as the UI shows them: a badge in the status's colour (the vocabulary is src/model's). */
import { isFailure } from "../../src/model/index.js";

export type Tone = "done" | "failed" | "running" | "starting" | "waiting" | "retried";

export function toneOf(status: string): Tone {
  if (status === "COMPLETED") return "done";
  if (status === "RESCHEDULED") return "retried";
  if (isFailure(status)) return "failed";
  if (status === "RUNNING") return "running";
  if (status === "SCHEDULING" || status === "INITIALIZING" || status === "PROCESSING" || status === "SUBMITTING") return "starting";
  return "waiting";
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge tone-${toneOf(status)}`}>{status}</span>;
}

/** An ISO time as the reader's local time, to the second. */
export function shortTime(iso: string | null): string {
  if (iso === null) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { hour12: false });
}
