/**
 * The DNS names of a group's members: what `{{host:TASK}}` becomes. OSMO
 * gives each member of a group a name under the group's subdomain
 * (`TASK-UUID.osmo-GROUP-UUID.NAMESPACE.svc.cluster.local`); troupe's are
 * `TASK.GROUP.troupe.internal`, one label per name as written (lower case,
 * `_` as `-`, as troupe compares names), under `.internal`, which ICANN keeps
 * for private names: no query for one means anything to a public resolver.
 * Every runtime serves them by DNS to the group's members (and each member's
 * resolver searches its group's domain, so the bare task name works too).
 */
import { createHash } from "node:crypto";
import { normalizeName } from "../spec/index.js";

export const MEMBER_DOMAIN = "troupe.internal";

/** A DNS label may have 63 characters; a troupe name 64. */
const LABEL_MAX = 63;

/** A task or group name as one DNS label: the name troupe compares, shortened (with a hash of it) only past 63 characters. */
export function nameLabel(name: string): string {
  const normal = normalizeName(name);
  if (normal.length <= LABEL_MAX) return normal;
  const hash = createHash("sha256").update(normal).digest("hex").slice(0, 8);
  return `${normal.slice(0, LABEL_MAX - 9)}-${hash}`;
}

/** The domain of a group's names, which its members' resolvers search: `GROUP.troupe.internal`. */
export function groupDomain(groupName: string): string {
  return `${nameLabel(groupName)}.${MEMBER_DOMAIN}`;
}

/** What `{{host:TASK}}` becomes for the members of `groupName`: `TASK.GROUP.troupe.internal`. */
export function memberName(groupName: string, taskName: string): string {
  return `${nameLabel(taskName)}.${groupDomain(groupName)}`;
}
