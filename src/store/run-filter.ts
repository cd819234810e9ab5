/**
 * What `troupe list` and the server's `GET /api/workflow` filter runs by: a
 * status (FAILED standing for every way of failing) and a part of the
 * workflow's name. One meaning for both, here where the listing is.
 */
import { TroupeError } from "../errors/index.js";
import { FAILED_STATUSES, RUN_STATUSES } from "../model/index.js";
import { sqlList } from "./sql-list.js";

export { RUN_STATUSES };

const KNOWN = new Set<string>(RUN_STATUSES);

/** The SQL condition (on `runs.status`) a status filter stands for; a status no run can have is a usage error. */
export function statusCondition(status: string): { sql: string; params: Record<string, string> } {
  const wanted = status.trim().toUpperCase();
  if (!KNOWN.has(wanted))
    throw new TroupeError(
      "E_UNKNOWN_STATUS",
      `no run status \`${status}\`; the statuses are ${RUN_STATUSES.join(", ")}`,
      "usage",
      "FAILED matches every FAILED_* status",
    );
  // FAILED: failed in any way (FAILED_CANCELED, FAILED_UPSTREAM, ...), as a user asking for failed runs means.
  if (wanted === "FAILED") return { sql: `status IN (${sqlList(FAILED_STATUSES)})`, params: {} };
  return { sql: "status = @status", params: { status: wanted } };
}

/** The SQL condition of a name filter: the workflow's name contains it, in any case (LIKE's wildcards taken literally). */
export function nameCondition(name: string): { sql: string; params: Record<string, string> } {
  return { sql: "name LIKE @namePattern ESCAPE '\\'", params: { namePattern: `%${name.replace(/[\\%_]/g, (c) => `\\${c}`)}%` } };
}

/** What a listing that found nothing was filtered by, for the message that says so ("no runs with status FAILED"). */
export function describeFilters(filters: Readonly<Record<string, string | number | undefined>>): string {
  const parts = Object.entries(filters)
    .filter(([, value]) => value !== undefined && value !== "")
    .map(([key, value]) => (key === "name" ? `whose name contains \`${value}\`` : `with ${key} ${value}`));
  return parts.length === 0 ? "" : parts.join(", ");
}
