/**
 * A workflow with too many groups to draw (GRAPH_LIMIT): its groups and tasks counted by status instead, so the
 * page opens at once however big the workflow is. The task table below still lists every task.
 */
import type { RunRecord } from "../../../src/model/index.js";
import { StatusBadge } from "../status";

/** Above this many groups the graph is summarised rather than drawn (React Flow slows down past a few thousand nodes). */
export const GRAPH_LIMIT = 2_000;

function countBy<T>(items: Iterable<T>, key: (item: T) => string): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

export function GraphSummary({ record }: { record: RunRecord }) {
  const groups = countBy(record.groups, (g) => g.status);
  const tasks = countBy(
    record.groups.flatMap((g) => g.tasks),
    (t) => t.status,
  );
  const taskCount = record.groups.reduce((sum, g) => sum + g.tasks.length, 0);
  return (
    <section className="graph-summary" aria-label="Groups and tasks by status">
      <p className="notice">
        {record.groups.length.toLocaleString()} groups and {taskCount.toLocaleString()} tasks: too many to draw (over{" "}
        {GRAPH_LIMIT.toLocaleString()} groups), counted by status instead. Every task is in the table below.
      </p>
      <table className="grid counts">
        <caption className="visually-hidden">Groups and tasks by status</caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Groups</th>
            <th scope="col">Tasks</th>
          </tr>
        </thead>
        <tbody>
          {[...new Set([...groups.map(([s]) => s), ...tasks.map(([s]) => s)])].map((status) => (
            <tr key={status}>
              <th scope="row">
                <StatusBadge status={status} />
              </th>
              <td className="number">{(groups.find(([s]) => s === status)?.[1] ?? 0).toLocaleString()}</td>
              <td className="number">{(tasks.find(([s]) => s === status)?.[1] ?? 0).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
