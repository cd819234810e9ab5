/**
 * Every task of a workflow: its group, status, attempt, exit code, times and the reason of its last change.
 * Virtualised (@tanstack/react-virtual): only the rows in view of the table's own scrolling box, and a few either
 * side, are in the document, so 100,000 tasks cost what 50 do; the rows' count and place are given to assistive
 * technology (aria-rowcount, aria-rowindex).
 */
import { useVirtualizer } from "@tanstack/react-virtual";
import { useMemo, useRef } from "react";
import type { GroupRecord, RunRecord, TaskRecord } from "../../../src/model/index.js";
import { Link } from "../Link";
import { logsPath } from "../router";
import { shortTime, StatusBadge } from "../status";

/**
 * Every row's height: one line (styles.css keeps the task table's cells to one line, a long reason cut short and
 * whole in its title). Exact, so the table's height does not change as rows are drawn: End reaches the last row.
 */
const ROW_HEIGHT = 31;
/** Rows drawn beyond the view on each side, so a scroll shows rows already there. */
const OVERSCAN = 20;

export function TaskTable({ record }: { record: RunRecord }) {
  const rows = useMemo(() => record.groups.flatMap((group) => group.tasks.map((task) => ({ group, task }))), [record.groups]);
  const box = useRef<HTMLDivElement>(null);
  // The virtualiser's methods change without React seeing it, so the React Compiler leaves this component as
  // written (not memoised), which is what it needs: its rows are read again at every render.
  // eslint-disable-next-line react-hooks/incompatible-library
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => box.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: OVERSCAN,
    getItemKey: (index) => `${rows[index]!.group.name}/${rows[index]!.task.name}`,
  });
  const shown = virtualizer.getVirtualItems();
  const before = shown[0]?.start ?? 0;
  const after = virtualizer.getTotalSize() - (shown.at(-1)?.end ?? 0);
  return (
    // Focusable, so the keyboard scrolls it (arrows, Page Up/Down) as the mouse does.
    <div className="table-scroll" ref={box} tabIndex={0} role="region" aria-label={`Tasks, ${rows.length.toLocaleString()} in all`}>
      <table className="grid tasks" aria-label="Tasks" aria-rowcount={rows.length + 1}>
        <thead>
          <tr aria-rowindex={1}>
            <th scope="col">Task</th>
            <th scope="col">Group</th>
            <th scope="col">Status</th>
            <th scope="col">Retry</th>
            <th scope="col">Exit</th>
            <th scope="col">Started</th>
            <th scope="col">Ended</th>
            <th scope="col">Reason</th>
            <th scope="col">Logs</th>
          </tr>
        </thead>
        <tbody>
          {before > 0 && <tr aria-hidden="true" style={{ height: before }} />}
          {shown.map((item) => {
            const { group, task } = rows[item.index]!;
            return (
              <tr
                key={item.key}
                data-task={task.name}
                data-index={item.index}
                aria-rowindex={item.index + 2}
                ref={virtualizer.measureElement}
              >
                <TaskCells runId={record.id} group={group} task={task} />
              </tr>
            );
          })}
          {after > 0 && <tr aria-hidden="true" style={{ height: after }} />}
        </tbody>
      </table>
    </div>
  );
}

function TaskCells({ runId, group, task }: { runId: string; group: GroupRecord; task: TaskRecord }) {
  return (
    <>
      <td>
        {task.name}
        {/* A group of one task has it as its lead: said only where there are others to lead. */}
        {task.lead && group.tasks.length > 1 && <span className="lead"> (lead)</span>}
      </td>
      <td>{group.name}</td>
      <td>
        <StatusBadge status={task.status} />
      </td>
      <td className="number">{task.retry_id}</td>
      <td className="number">{task.exit_code ?? "–"}</td>
      <td>{shortTime(task.start_time)}</td>
      <td>{shortTime(task.end_time)}</td>
      <td className="reason" title={task.reason ?? undefined}>
        {task.reason ?? ""}
      </td>
      <td>
        <Link to={logsPath(runId, task.name)}>
          <span className="visually-hidden">Logs of {task.name}</span>
          <span aria-hidden="true">logs</span>
        </Link>
      </td>
    </>
  );
}
