/**
 * The server's pools: each one's capacity, what its running workflows hold, and how many wait for resources
 * (GET /api/pool). Read again when the server says a workflow changed (GET /api/workflow/changes), and now and
 * then whatever it says; `troupe ui` (no such stream, no pools) every few seconds.
 */
import { useEffect, useState } from "react";
import { getJson } from "../api";
import { readOnChange } from "../live/read-on-change";

export interface PoolLoad {
  name: string;
  runtime: string;
  capacity: Resources;
  used: Resources;
  running_workflows: number;
  queued_workflows: number;
}
interface Resources {
  cpus: number;
  gpus: number;
  memory_bytes: number;
  tasks: number;
}

const REFRESH_MS = 3_000;
const BACKSTOP_MS = 15_000;

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(bytes >= 10 * 1024 ** 3 ? 0 : 1)} GiB`;
}

/** A meter with its numbers beside it; the meter element gives screen readers the fraction. */
function Usage({
  label,
  used,
  capacity,
  format = String,
}: {
  label: string;
  used: number;
  capacity: number;
  format?: (n: number) => string;
}) {
  const full = capacity > 0 && used >= capacity;
  return (
    <span className={`usage${full ? " full" : ""}`}>
      <meter aria-label={label} min={0} max={Math.max(capacity, 1)} value={used} />
      {format(used)} / {format(capacity)}
    </span>
  );
}

export function PoolsPage() {
  const [pools, setPools] = useState<PoolLoad[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  // Read when a workflow changes (its tasks take or give back resources), and every BACKSTOP_MS for what the
  // token cannot see change (other users' private workflows take from the same pools).
  useEffect(
    () =>
      readOnChange(
        (signal) =>
          getJson<{ pools: PoolLoad[] }>("/api/pool", signal).then(
            (found) => (setPools(found.pools), setError(undefined)),
            (caught: Error) => void (signal.aborted || setError(caught.message)),
          ),
        REFRESH_MS,
        BACKSTOP_MS,
      ),
    [],
  );

  return (
    <main>
      <h1>Pools</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {pools === undefined && !error && <p>Loading…</p>}
      {pools?.length === 0 && <p>No pools: this is the local history of `troupe run`, where each run brings its own.</p>}
      {pools && pools.length > 0 && (
        <table className="grid pools" aria-label="Pools">
          <thead>
            <tr>
              <th scope="col">Pool</th>
              <th scope="col">Runtime</th>
              <th scope="col">Task slots</th>
              <th scope="col">CPUs</th>
              <th scope="col">Memory</th>
              <th scope="col">GPUs</th>
              <th scope="col">Running</th>
              <th scope="col">Queued</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((pool) => (
              <tr key={pool.name} data-pool={pool.name}>
                <th scope="row">{pool.name}</th>
                <td>{pool.runtime}</td>
                <td className="tasks">
                  <Usage label={`${pool.name}: task slots used`} used={pool.used.tasks} capacity={pool.capacity.tasks} />
                </td>
                <td className="cpus">
                  <Usage
                    label={`${pool.name}: CPUs used`}
                    used={pool.used.cpus}
                    capacity={pool.capacity.cpus}
                    format={(n) => String(+n.toFixed(2))}
                  />
                </td>
                <td className="memory">
                  <Usage
                    label={`${pool.name}: memory used`}
                    used={pool.used.memory_bytes}
                    capacity={pool.capacity.memory_bytes}
                    format={gib}
                  />
                </td>
                <td className="gpus">
                  <Usage label={`${pool.name}: GPUs used`} used={pool.used.gpus} capacity={pool.capacity.gpus} />
                </td>
                <td className="number running">{pool.running_workflows}</td>
                <td className="number queued">{pool.queued_workflows}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
