/**
 * Workflows, filtered as `troupe workflow list` filters them (GET /api/workflow), with a bulk cancel of those
 * selected (one cancel call each, as `troupe workflow cancel ID...`). Kept up to date by push: the server
 * says which workflows changed (GET /api/workflow/changes, NDJSON over fetch: EventSource cannot send the
 * token's Authorization header) and the list is read again then. `troupe ui` (local history, no such stream)
 * reads it every few seconds while the tab is visible.
 */
import { useEffect, useState } from "react";
import { isFinal, RUN_STATUSES, type RunSummary } from "../../../src/model/index.js";
import { getJson, postJson, workflowApi } from "../api";
import { readOnChange } from "../live/read-on-change";
import { useSession } from "../App";
import { Link } from "../Link";
import { workflowPath } from "../router";
import { shortTime, StatusBadge } from "../status";

const REFRESH_MS = 2_000;

interface Filters {
  status: string;
  name: string;
  pool: string;
  user: string;
  everyone: boolean;
  label: string;
}

export function listQuery(filters: Filters): string {
  const query = new URLSearchParams();
  if (filters.status) query.set("status", filters.status);
  if (filters.name.trim()) query.set("name", filters.name.trim());
  if (filters.pool.trim()) query.set("pool", filters.pool.trim());
  for (const user of filters.user.split(/[\s,]+/).filter(Boolean)) query.append("user", user);
  if (filters.everyone && !filters.user.trim()) query.set("all_users", "true");
  for (const label of filters.label.split(/\s+/).filter(Boolean)) query.append("label", label);
  return query.toString();
}

export function WorkflowListPage() {
  const session = useSession();
  // Local history has no users: everyone's is all there is.
  const [filters, setFilters] = useState<Filters>({ status: "", name: "", pool: "", user: "", everyone: session.read_only, label: "" });
  const [workflows, setWorkflows] = useState<RunSummary[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const query = listQuery(filters);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  // Only what is listed and can still be canceled counts as selected.
  const cancelable = new Set((workflows ?? []).filter((w) => !isFinal(w.status)).map((w) => w.id));
  const chosen = [...selected].filter((id) => cancelable.has(id));
  const toggle = (id: string, on: boolean) =>
    setSelected((old) => {
      const next = new Set(old);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  const cancelChosen = async () => {
    setBusy(true);
    setNotice(undefined);
    const results = await Promise.allSettled(chosen.map((id) => postJson(workflowApi(id, "/cancel"), { message: "from the web UI" })));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${chosen[i]}: ${(r.reason as Error).message}`] : []));
    setError(failed.length > 0 ? `Could not cancel ${failed.join("; ")}` : undefined);
    setNotice(`Cancel asked of ${chosen.length - failed.length} workflow${chosen.length - failed.length === 1 ? "" : "s"}.`);
    setSelected(new Set());
    setBusy(false);
  };

  // Read when the server says a workflow changed (live/read-on-change.ts); troupe ui's history every REFRESH_MS.
  useEffect(
    () =>
      readOnChange(async (signal) => {
        try {
          const body = await getJson<{ workflows: RunSummary[] }>(`/api/workflow?${query}`, signal);
          setWorkflows(body.workflows);
          setError(undefined);
        } catch (caught) {
          if (!signal.aborted) setError((caught as Error).message);
        }
      }, REFRESH_MS),
    [query],
  );

  const set = (field: keyof Filters) => (event: { target: { value: string; checked?: boolean; type?: string } }) =>
    setFilters((f) => ({ ...f, [field]: event.target.type === "checkbox" ? event.target.checked : event.target.value }));

  return (
    <main>
      <h1>Workflows</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
        <label>
          Status
          <select value={filters.status} onChange={set("status")}>
            <option value="">any</option>
            {RUN_STATUSES.map((status) => (
              <option key={status}>{status}</option>
            ))}
          </select>
        </label>
        <label>
          Name contains
          <input value={filters.name} onChange={set("name")} />
        </label>
        {!session.read_only && (
          <>
            <label>
              Pool
              <input value={filters.pool} onChange={set("pool")} />
            </label>
            <label>
              Users
              <input value={filters.user} onChange={set("user")} placeholder={session.user} />
            </label>
            <label className="check">
              <input type="checkbox" checked={filters.everyone} onChange={set("everyone")} />
              Everyone’s
            </label>
            <label>
              Labels
              <input value={filters.label} onChange={set("label")} placeholder="key=value" />
            </label>
          </>
        )}
      </form>
      <div className="bulk">
        <button type="button" disabled={busy || chosen.length === 0} onClick={() => void cancelChosen()}>
          Cancel selected ({chosen.length})
        </button>
        {notice && (
          <span role="status" className="notice">
            {notice}
          </span>
        )}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {workflows && workflows.length === 0 && <p>No workflows{query ? " match these filters" : " yet"}.</p>}
      {workflows && workflows.length > 0 && (
        <table className="grid" aria-label="Workflows">
          <thead>
            <tr>
              <th scope="col">
                <span className="visually-hidden">Select</span>
              </th>
              <th scope="col">ID</th>
              <th scope="col">Status</th>
              {!session.read_only && <th scope="col">Pool</th>}
              {!session.read_only && <th scope="col">User</th>}
              <th scope="col">Submitted</th>
              <th scope="col">Tasks</th>
            </tr>
          </thead>
          <tbody>
            {workflows.map((w) => (
              <tr key={w.id} data-workflow={w.id}>
                <td>
                  {cancelable.has(w.id) && (
                    <input
                      type="checkbox"
                      aria-label={`Select ${w.id}`}
                      checked={selected.has(w.id)}
                      onChange={(event) => toggle(w.id, event.target.checked)}
                    />
                  )}
                </td>
                <td>
                  <Link to={workflowPath(w.id)}>{w.id}</Link>
                </td>
                <td>
                  <StatusBadge status={w.status} />
                </td>
                {!session.read_only && <td>{w.pool ?? "–"}</td>}
                {!session.read_only && <td>{w.user ?? "–"}</td>}
                <td>{shortTime(w.submit_time)}</td>
                <td className="number">{w.task_count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
