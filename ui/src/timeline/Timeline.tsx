/**
 * The timeline (Gantt) of a workflow's task attempts: each attempt's waits, sandbox preparation and run as bars on
 * one time axis, its group's barrier release as a line, its start skew after it, retries as rows of their own.
 * The rows are decided in phases.ts; this draws them.
 */
import { useMemo } from "react";
import { StatusBadge } from "../status";
import { buildTimeline, formatDuration, type PhaseEvent, type Segment, type TimelineRow } from "./phases";

const PHASE_NAMES: Record<string, string> = {
  SUBMITTING: "submitting",
  WAITING: "waiting for upstream groups",
  PROCESSING: "processing",
  SCHEDULING: "waiting for resources",
  INITIALIZING: "preparing its sandbox",
  RUNNING: "running",
};
const phaseName = (status: string) => PHASE_NAMES[status] ?? status.toLowerCase();

/** Where on the axis, as a percentage of its width. */
const at = (time: number, start: number, span: number) => `${((time - start) / span) * 100}%`;

function describe(row: TimelineRow): string {
  const phases = row.segments.map((s) => `${phaseName(s.status)} ${formatDuration(s.end - s.start)}`);
  const skew = row.skew === null ? "" : `, started ${formatDuration(row.skew)} after the barrier`;
  return `${phases.join(", ")}; now ${row.status}${skew}`;
}

function Bar({ segment, start, span }: { segment: Segment; start: number; span: number }) {
  return (
    <span
      className={`phase phase-${segment.status.toLowerCase()}`}
      style={{ left: at(segment.start, start, span), width: `max(2px, ${((segment.end - segment.start) / span) * 100}%)` }}
      title={`${phaseName(segment.status)}: ${formatDuration(segment.end - segment.start)}`}
    />
  );
}

const TICKS = 5;

export function Timeline({ events, now }: { events: readonly PhaseEvent[]; now: number }) {
  const timeline = useMemo(() => buildTimeline(events, now), [events, now]);
  if (timeline.rows.length === 0) return <p className="timeline-empty">Nothing has started yet.</p>;
  const { start, end, rows } = timeline;
  const span = Math.max(end - start, 1);
  const ticks = Array.from({ length: TICKS + 1 }, (_, i) => (span * i) / TICKS);
  return (
    <div className="timeline">
      {timeline.aggregated && (
        <p className="notice">
          {timeline.attempts.toLocaleString()} task attempts: one row per group (each group's slowest start after its barrier).
        </p>
      )}
      <p className="legend" aria-hidden="true">
        <span className="phase-key phase-waiting" /> waiting for upstream
        <span className="phase-key phase-scheduling" /> waiting for resources
        <span className="phase-key phase-initializing" /> preparing sandbox
        <span className="phase-key phase-running" /> running
        <span className="phase-key barrier-key" /> barrier released
      </p>
      <table className="grid timeline-table" aria-label="Timeline">
        <thead>
          <tr>
            <th scope="col">{timeline.aggregated ? "Group" : "Task"}</th>
            <th scope="col" className="axis">
              <span className="visually-hidden">Phases over time</span>
              {ticks.map((offset) => (
                <span key={offset} className="tick" style={{ left: at(start + offset, start, span) }} aria-hidden="true">
                  +{formatDuration(offset)}
                </span>
              ))}
            </th>
            <th scope="col">Start skew</th>
            <th scope="col">Now</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key} data-row={row.task === null ? row.group : `${row.task}#${row.retry}`}>
              <th scope="row" className="who">
                <span className="group-name">{row.group}</span>
                {row.task !== null && <> / {row.task}</>}
                {row.retry > 0 && <span className="retry"> retry {row.retry}</span>}
              </th>
              <td className="bars" role="img" aria-label={describe(row)}>
                {row.segments.map((segment) => (
                  <Bar key={segment.start + segment.status} segment={segment} start={start} span={span} />
                ))}
                {row.barrier !== null && <span className="barrier" style={{ left: at(row.barrier, start, span) }} />}
              </td>
              <td className="number skew">{row.skew === null ? "–" : `+${formatDuration(row.skew)}`}</td>
              <td className="outcome">
                <StatusBadge status={row.status} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
