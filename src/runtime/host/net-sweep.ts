/**
 * What killed runs left of their networks, found by the run keys their
 * bridges and rules carry (network.ts), and whether this process can make
 * network namespaces at all.
 */
import { readFileSync } from "node:fs";
import { onPath } from "../../util/executables.js";
import { deleteLinks, ipJson, NetworkError } from "./net-exec.js";
import { deleteRules, firewall, listTaggedRules, type TaggedRule } from "./net-iptables.js";
import { ALIAS_PREFIX, BRIDGE_PREFIX, type IpLink, namesScript, removalScript } from "./net-links.js";

/**
 * Removes the bridges (with their ports) and rules of runs that are gone:
 * `isRunAlive(runKey, ownerPid)` decides (ownerPid is the pid that opened the
 * bridge, from its alias). A rule whose bridge is gone goes whoever it was
 * for (its process died between the two removals, say): no live bridge of
 * troupe lacks its rules. With `idleOnly`, a stale bridge that still has
 * ports (members running on it) stays, with its rules. Returns what it removed.
 * A run key it does not know should count as alive: other troupe homes (and
 * their tests) may share the machine.
 */
export async function sweepRunNetworks(
  isRunAlive: (runKey: string, ownerPid: number) => boolean,
  options: { idleOnly?: boolean } = {},
): Promise<string[]> {
  const removed: string[] = [];
  // The rules before the links: a rule listed here whose bridge the listing below lacks was added to a bridge
  // that existed (a bridge is made before its rules) and is gone since, not to one made after the listing.
  const probe = await firewall();
  const rules = probe.ok ? await listTaggedRules(probe.firewall) : [];
  const links = await ipJson<IpLink>(["link", "show"], "cannot list links");
  const doomed: string[] = [];
  let script = "";
  /** The bridges that stay, which keep their rules. */
  const kept = new Set<string>();
  for (const link of links) {
    const alias = link.ifalias ?? "";
    if (!link.ifname.startsWith(BRIDGE_PREFIX) || !alias.startsWith(ALIAS_PREFIX)) continue;
    const m = /^troupe:([^:]+):(\d+)$/.exec(alias);
    if (!m) {
      kept.add(link.ifname);
      continue;
    }
    const { script: removal, ports } = removalScript(links, link.ifname);
    if (isRunAlive(m[1] as string, Number(m[2])) || (options.idleOnly && ports.length > 0)) {
      kept.add(link.ifname);
      continue;
    }
    script += removal;
    doomed.push(...ports, link.ifname);
    removed.push(`bridge ${link.ifname} of run ${m[1]}${ports.length > 0 ? ` (with ${ports.length} veth)` : ""}`);
  }
  // Host ends left without their bridge (named v<hex>-<n>, no master).
  const bridges = new Set(links.map((l) => l.ifname));
  for (const link of links) {
    const m = /^v([0-9a-f]{8})-[0-9a-z]+$/.exec(link.ifname);
    if (!m || link.master !== undefined || doomed.includes(link.ifname) || bridges.has(`${BRIDGE_PREFIX}${m[1]}`)) continue;
    doomed.push(link.ifname);
    script += namesScript([link.ifname]);
    removed.push(`veth ${link.ifname} (its bridge is gone)`);
  }
  await deleteLinks(script);

  if (probe.ok) {
    const stale: TaggedRule[] = rules.filter((r) => !kept.has(r.bridge));
    const failures = await deleteRules(probe.firewall, stale);
    if (failures.length > 0) throw new NetworkError(`sweep: cannot delete stale rules: ${failures.join("; ")}`);
    for (const r of stale) removed.push(`${r.table} rule of run ${r.runKey} (${r.bridge}): ${r.rule.split(" ")[0]}`);
  }
  return removed;
}

// ---------------------------------------------------------------- can we?

let usable: boolean | undefined;

/** Root with CAP_NET_ADMIN and CAP_SYS_ADMIN (for `unshare --net`), and `ip` on PATH. Cheap and synchronous; cached. */
export function canUseNetworkNamespaces(): boolean {
  usable ??= check();
  return usable;
}

function check(): boolean {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (hex === undefined) return false;
    const caps = BigInt(`0x${hex}`);
    const NET_ADMIN = 1n << 12n;
    const SYS_ADMIN = 1n << 21n;
    if ((caps & NET_ADMIN) === 0n || (caps & SYS_ADMIN) === 0n) return false;
  } catch {
    // No /proc/self/status to read (not Linux): no network namespaces either.
    return false;
  }
  return onPath("ip");
}
