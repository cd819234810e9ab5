/** Every task of a workflow: its group, status, attempt, exit code, times and the reason of its last change. */
import type { RunRecord } from "../../../src/model/index.js";
import { Link } from "../Link";
import { logsPath } from "../router";
import { shortTime, StatusBadge } from "../status";

export function TaskTable({ record }: { record: RunRecord }) {
  return (
    <table className="grid tasks" aria-label="Tasks">
      <thead>
        <tr>
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
        {record.groups.flatMap((group) =>
          group.tasks.map((task) => (
            <tr key={`${group.name}/${task.name}`} data-task={task.name}>
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
              <td className="reason">{task.reason ?? ""}</td>
              <td>
                <Link to={logsPath(record.id, task.name)}>
                  <span className="visually-hidden">Logs of {task.name}</span>
                  <span aria-hidden="true">logs</span>
                </Link>
              </td>
            </tr>
          )),
        )}
      </tbody>
    </table>
  );
}
