/** A workflow's status changes as the stream pushed them, newest first: the workflow's, each group's, each attempt's. */
import type { StreamLine } from "../api";
import { shortTime, StatusBadge } from "../status";

export type EventLine = Extract<StreamLine, { type: "event" }>;

/** How many of the newest the page keeps and shows (the whole list is `troupe workflow events`). */
export const EVENTS_SHOWN = 200;

export function EventTable({ events }: { events: readonly EventLine[] }) {
  const newest = events.slice(-EVENTS_SHOWN).reverse();
  return (
    <table className="grid events" aria-label="Events">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Of</th>
          <th scope="col">From</th>
          <th scope="col">To</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        {newest.map((e, i) => (
          <tr key={`${e.time}-${i}`}>
            <td>{shortTime(e.time)}</td>
            <td>
              {[e.group, e.task].filter(Boolean).join(" / ") || "workflow"}
              {e.retry_id ? ` (retry ${e.retry_id})` : ""}
            </td>
            <td>{e.from ?? "–"}</td>
            <td>
              <StatusBadge status={e.to} />
            </td>
            <td className="reason">{e.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
