/**
 * The per-run network of the host runtime: a Linux bridge with a private /24
 * for each run, one veth pair per task (the peer named eth0 inside the task's
 * network namespace), NAT for egress. Namespaces are the ones `unshare --net`
 * makes for each task, addressed by a PID; they vanish with their processes
 * and take their veth pairs with them, so the bridge and the iptables rules
 * are the only per-run state. Both carry the run key (the bridge in its alias
 * `troupe:<runKey>:<pid>`, the rules in the comment `troupe:<runKey>:<bridge>`),
 * which is how sweepRunNetworks() finds what a killed run left behind.
 *
 * Everything goes through `ip -batch -` (one process for many commands) and
 * `iptables-restore --noflush` (one process for many rules): one `ip` process
 * per command costs tens of milliseconds per task.
 */
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tolerated } from "../../util/log.js";
import { deleteLinks, NetworkError, explainBatchFailure, ipBatch, ipJson } from "./net-exec.js";
import { addRules, bridgeRules, deleteRules, firewall, listTaggedRules } from "./net-iptables.js";
import { formatIPv4, overlaps, parseCidr, parseIPv4, type Prefix } from "./net-address.js";
import {
  ALIAS_PREFIX,
  BRIDGE_PREFIX,
  freeSubnets,
  GROUP_MAX,
  GROUP_MIN,
  type IpLink,
  type IpRoute,
  namesScript,
  PREFIX,
  removalScript,
  RUN_KEY,
} from "./net-links.js";

export { NetworkError, netProcessCount } from "./net-exec.js";
export { canUseNetworkNamespaces, sweepRunNetworks } from "./net-sweep.js";

export interface RunNetwork {
  readonly runKey: string;
  /** `trp-<8 hex>`. */
  readonly bridge: string;
  /** The run's subnet in CIDR notation, e.g. `10.213.7.0/24`. */
  readonly subnet: string;
  /** The first address of the subnet, on the bridge; every member's default route. */
  readonly gateway: string;
  readonly prefixLength: number;
  /** MTU of the bridge and the veth pairs (the uplink's when smaller than 1500). */
  readonly mtu: number;
  /** Whether members can reach beyond this machine (forwarding + MASQUERADE are in place). */
  readonly egress: boolean;
  /** Why there is no egress, when there is none. */
  readonly egressNote?: string;
  /** A free address of the subnet; throws when all are taken. Round-robin, so a released address is not reused at once. */
  allocate(): string;
  /** Gives an address back (unknown addresses are ignored). */
  release(address: string): void;
  /**
   * Creates one veth pair per member (host end on the bridge, up), the peer
   * created directly in the network namespace of `pid` as eth0. One `ip -batch`
   * for all members; all or nothing (on failure the new host ends are removed).
   */
  attach(members: Array<{ pid: number; address: string }>): Promise<void>;
  /**
   * The `ip -batch` script a member runs inside its namespace (e.g. `ip -batch FILE`
   * or on stdin) to bring lo and eth0 up with its address and a default route via the gateway.
   */
  insideScript(address: string): string;
  /** Deletes the veth host ends still on the bridge, the bridge and the rules. Idempotent. */
  close(): Promise<void>;
}

export interface RunNetworkOptions {
  /** Where the run's /24 is taken from; default 10.213.0.0/16. A prefix of /8 to /24. */
  pool?: string;
}

export const DEFAULT_POOL = "10.213.0.0/16";
// ---------------------------------------------------------------- the machine's links

/** IPv4 prefixes in use on this machine: every address, and routes of /16 or longer (not the default route). */
async function prefixesInUse(): Promise<{ used: Array<Prefix & { dev: string; owner: string }>; uplinkMtu: number | undefined }> {
  const [links, routes] = await Promise.all([
    ipJson<IpLink>(["-4", "addr", "show"], "cannot list the machine's addresses"),
    ipJson<IpRoute>(["-4", "route", "show"], "cannot list the machine's routes"),
  ]);
  const used: Array<Prefix & { dev: string; owner: string }> = [];
  for (const link of links) {
    for (const info of link.addr_info ?? []) {
      const prefix = info.local === undefined ? undefined : parseCidr(`${info.local}/${info.prefixlen ?? 32}`);
      if (prefix) used.push({ ...prefix, dev: link.ifname, owner: link.ifname });
    }
  }
  for (const route of routes) {
    if (route.dst === undefined || route.dst === "default") continue;
    const prefix = parseCidr(route.dst);
    // A broad route (a VPN's 10.0.0.0/8, say) does not forbid a /24 in it: the /24 is more specific.
    if (prefix && prefix.length >= 16) used.push({ ...prefix, dev: route.dev ?? "", owner: `a route via ${route.dev ?? "?"}` });
  }
  const uplink = routes.find((r) => r.dst === "default")?.dev;
  const uplinkMtu = links.find((l) => l.ifname === uplink)?.mtu;
  return { used, uplinkMtu };
}

// ---------------------------------------------------------------- open

function checkRunKey(runKey: string): void {
  if (!RUN_KEY.test(runKey)) {
    throw new NetworkError(
      `invalid run key ${JSON.stringify(runKey)} for a run network: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

/**
 * Creates the run's bridge (named `trp-<8 hex>`, alias `troupe:<runKey>:<pid>`)
 * with a free /24 from the pool, and egress: ip_forward and a MASQUERADE rule.
 * Without a usable iptables the network works without egress (`egress: false`).
 */
export async function openRunNetwork(runKey: string, options: RunNetworkOptions = {}): Promise<RunNetwork> {
  checkRunKey(runKey);
  const poolText = options.pool ?? DEFAULT_POOL;
  const pool = parseCidr(poolText);
  if (!pool || pool.length < 8 || pool.length > PREFIX) {
    throw new NetworkError(`invalid address pool ${JSON.stringify(poolText)}: give an IPv4 prefix from /8 to /24, e.g. ${DEFAULT_POOL}`);
  }
  for (let attempt = 1; ; attempt++) {
    const { used, uplinkMtu } = await prefixesInUse();
    const free = freeSubnets(pool, used);
    if (free.length === 0) {
      throw new NetworkError(
        `no free /24 left in ${poolText} for a run network: every one overlaps an address or route of this machine`,
        "remove stale bridges with a sweep, or choose another pool",
      );
    }
    // A random pick keeps concurrent runs apart; the check below settles the rest.
    const base = free[randomBytes(4).readUInt32BE(0) % free.length] as number;
    const mtu = Math.min(1500, uplinkMtu ?? 1500);
    const bridge = `${BRIDGE_PREFIX}${randomBytes(4).toString("hex")}`;
    // The bridge and its veths share a random link group: `ip link del group G` removes them all in one
    // kernel operation (50 veths: about 60 ms instead of a second for one `link del` each).
    const group = GROUP_MIN + (randomBytes(4).readUInt32BE(0) % (GROUP_MAX - GROUP_MIN));
    // A fixed MAC: otherwise the bridge takes its lowest port's MAC, and it changes as members come and go.
    const mac = `02:${[...randomBytes(5)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
    const gateway = formatIPv4(base + 1);
    const script = [
      `link add name ${bridge} address ${mac} mtu ${mtu} group ${group} type bridge`,
      `link set dev ${bridge} alias ${ALIAS_PREFIX}${runKey}:${process.pid} up`,
      `addr add ${gateway}/${PREFIX} dev ${bridge}`,
      "",
    ].join("\n");
    const created = await ipBatch(script);
    if (created.code !== 0) {
      // ip stops at the first failing command: unless that was the `link add`, the bridge exists and is ours.
      const failedAdd = /Command failed -:1$/m.test(created.stderr);
      // Undone before the failure is reported; a bridge left over goes with the next run's sweep.
      if (!failedAdd) await deleteLinks(namesScript([bridge])).catch(tolerated("could not remove a bridge half made", { bridge }, "warn"));
      if (failedAdd && attempt < 3 && /File exists/.test(created.stderr)) continue;
      throw new NetworkError(
        `cannot create the run's bridge: ${explainBatchFailure(script, created)}`,
        "creating a bridge needs root (CAP_NET_ADMIN) and the bridge kernel module",
      );
    }
    // Another run may have picked the same /24 at the same moment: whoever sees the other backs off.
    let clash: { owner: string } | undefined;
    let egress: { ok: boolean; note?: string } = { ok: false };
    try {
      const after = await prefixesInUse();
      const mine = { base, length: PREFIX };
      clash = after.used.find((u) => u.dev !== bridge && overlaps(u, mine));
      if (!clash) egress = await enableEgress(runKey, bridge, `${formatIPv4(base)}/${PREFIX}`);
    } catch (error) {
      await deleteLinks(namesScript([bridge])).catch(tolerated("could not remove a bridge half made", { bridge }, "warn"));
      throw error;
    }
    if (clash) {
      await deleteLinks(namesScript([bridge]));
      // Both may back off; a random pause makes the next round unlikely to clash again.
      if (attempt < 20) {
        await new Promise((resolve) => setTimeout(resolve, 1 + (randomBytes(1).readUInt8(0) % (10 * attempt))));
        continue;
      }
      throw new NetworkError(`cannot find a free /24 in ${poolText}: ${formatIPv4(base)}/${PREFIX} is taken by ${clash.owner}`);
    }
    return new HostRunNetwork(runKey, bridge, group, base, mtu, egress);
  }
}

async function enableEgress(runKey: string, bridge: string, subnet: string): Promise<{ ok: boolean; note?: string }> {
  try {
    const path = "/proc/sys/net/ipv4/ip_forward";
    if (readFileSync(path, "utf8").trim() !== "1") writeFileSync(path, "1\n");
  } catch (error) {
    return { ok: false, note: `cannot enable IPv4 forwarding (net.ipv4.ip_forward): ${(error as Error).message}` };
  }
  try {
    const probe = await firewall();
    if (!probe.ok) return { ok: false, note: probe.reason };
    const failure = await addRules(probe.firewall, bridgeRules(runKey, bridge, subnet));
    if (failure) return { ok: false, note: `cannot add the NAT rule for ${subnet}: ${failure}` };
    return { ok: true };
  } catch (error) {
    return { ok: false, note: `cannot add the NAT rule for ${subnet}: ${(error as Error).message}` };
  }
}

/** The network namespace of a process (`net:[inode]`), undefined if it is gone. */
function netnsOf(pid: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    // The process is gone: that is the answer.
    return undefined;
  }
}

class HostRunNetwork implements RunNetwork {
  readonly subnet: string;
  readonly gateway: string;
  readonly prefixLength = PREFIX;
  readonly egress: boolean;
  readonly egressNote?: string;
  private readonly inUse = new Set<number>();
  /** Host octet handed out last; allocation goes on from the next one. */
  private cursor = 1;
  private vethCount = 0;
  private closing: Promise<void> | undefined;

  constructor(
    readonly runKey: string,
    readonly bridge: string,
    private readonly group: number,
    private readonly base: number,
    readonly mtu: number,
    egress: { ok: boolean; note?: string },
  ) {
    this.subnet = `${formatIPv4(base)}/${PREFIX}`;
    this.gateway = formatIPv4(base + 1);
    this.egress = egress.ok;
    if (egress.note !== undefined) this.egressNote = egress.note;
  }

  /** Host part of `address` if it is a member address of this subnet (not network, gateway or broadcast). */
  private hostPart(address: string): number | undefined {
    const value = parseIPv4(address);
    if (value === undefined || value - this.base < 2 || value - this.base > 254) return undefined;
    return value - this.base;
  }

  private memberHost(address: string, what: string): number {
    const host = this.hostPart(address);
    if (host === undefined) {
      throw new NetworkError(`${what}: ${JSON.stringify(address)} is not a member address of ${this.subnet} (${this.bridge})`);
    }
    return host;
  }

  allocate(): string {
    for (let step = 0; step < 253; step++) {
      const host = ((this.cursor - 2 + 1 + step) % 253) + 2;
      if (!this.inUse.has(host)) {
        this.inUse.add(host);
        this.cursor = host;
        return formatIPv4(this.base + host);
      }
    }
    throw new NetworkError(
      `the run network ${this.subnet} (${this.bridge}) has no free address: all 253 are in use`,
      "fewer tasks can run at once with their own network namespace",
    );
  }

  release(address: string): void {
    const host = this.hostPart(address);
    if (host !== undefined) this.inUse.delete(host);
  }

  async attach(members: Array<{ pid: number; address: string }>): Promise<void> {
    if (members.length === 0) return;
    if (this.closing) throw new NetworkError(`the run network ${this.bridge} is closed`);
    const names: string[] = [];
    const lines: string[] = [];
    const hostNetns = netnsOf("self");
    for (const { pid, address } of members) {
      if (!Number.isInteger(pid) || pid <= 0) throw new NetworkError(`cannot attach ${address} to ${this.bridge}: invalid pid ${pid}`);
      this.memberHost(address, `cannot attach pid ${pid} to ${this.bridge}`);
      // Moving the peer too early (before `unshare` made the namespace) would put an eth0 into the host's namespace.
      const netns = netnsOf(String(pid));
      if (netns === undefined) throw new NetworkError(`cannot attach pid ${pid} (${address}) to ${this.bridge}: no such process`);
      if (netns === hostNetns) {
        throw new NetworkError(
          `cannot attach pid ${pid} (${address}) to ${this.bridge}: it is still in the host's network namespace`,
          "attach once the task's `unshare --net` has made its namespace (e.g. after the task signals it is ready)",
        );
      }
      // v<bridge hex>-<n>: at most 15 characters (IFNAMSIZ), and unique even while old namespaces are still going away.
      const name = `v${this.bridge.slice(BRIDGE_PREFIX.length)}-${(this.vethCount++).toString(36)}`;
      names.push(name);
      lines.push(
        `link add name ${name} mtu ${this.mtu} group ${this.group} up master ${this.bridge} type veth peer name eth0 mtu ${this.mtu} netns ${pid}`,
      );
    }
    const script = lines.join("\n") + "\n";
    const result = await ipBatch(script);
    if (result.code === 0) return;
    const why = explainBatchFailure(script, result);
    // The attach's failure is what is reported; links left go with the bridge when the run closes.
    await deleteLinks(namesScript(names)).catch(tolerated("could not remove the links of a failed attach", { bridge: this.bridge }));
    const gone = /No such process|Invalid argument.*netns/.test(result.stderr) ? " (has the process exited?)" : "";
    throw new NetworkError(`cannot attach ${members.length} member(s) to ${this.bridge}: ${why}${gone}`);
  }

  insideScript(address: string): string {
    this.memberHost(address, "no inside script");
    return [
      "link set dev lo up",
      `addr add ${address}/${PREFIX} dev eth0`,
      "link set dev eth0 up",
      `route add default via ${this.gateway} dev eth0`,
      "",
    ].join("\n");
  }

  close(): Promise<void> {
    this.closing ??= this.doClose().catch((error: unknown) => {
      this.closing = undefined;
      throw error;
    });
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const problems: string[] = [];
    try {
      const links = await ipJson<IpLink>(["link", "show"], "cannot list links");
      await deleteLinks(removalScript(links, this.bridge).script);
    } catch (error) {
      problems.push((error as Error).message);
    }
    const probe = await firewall();
    if (probe.ok) {
      const mine = (await listTaggedRules(probe.firewall)).filter((r) => r.bridge === this.bridge);
      problems.push(...(await deleteRules(probe.firewall, mine)));
    }
    if (problems.length > 0) throw new NetworkError(`cannot fully remove the run network ${this.bridge}: ${problems.join("; ")}`);
  }
}
