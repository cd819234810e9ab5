/**
 * Names for a host run's members: the run's name server (runtime/name-server.ts),
 * where it listens and who it answers, and what each sandbox is given to
 * resolve with (sandbox-names.ts). In netns mode it listens on the run
 * bridge's gateway and tells each member its own group's names; with the
 * host's network shared, on a loopback address of its own (127.53.X.Y),
 * where any local process could ask it, so it tells the run's names only,
 * which are no secret there (every port is shared too). Where it cannot
 * listen (port 53 needs root, or net.ipv4.ip_unprivileged_port_start <= 53),
 * names resolve through /etc/hosts alone, and the run says so.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { tolerated } from "../../util/log.js";
import type { TaskLaunch } from "../types.js";
import { parseCidr, parseIPv4 } from "./net-address.js";
import { hostResolverConfig, MemberNameServer, type Upstream } from "../name-server.js";
import { hostsText, resolvConfText } from "./sandbox-names.js";

export type NamesPlace = { kind: "netns"; gateway: string; subnet: string } | { kind: "shared" } | { kind: "none" };

export interface MemberNameFiles {
  hosts: { text: string; file: string };
  resolver?: { text: string; file: string; target: string };
}

const PORT_53 = "port 53 needs root, or net.ipv4.ip_unprivileged_port_start <= 53";

function withoutServer(why: string): string {
  return `no name server for the run (${why}): {{host:...}} names resolve through /etc/hosts only (getaddrinfo finds them, nslookup does not)`;
}

/** Why an unprivileged troupe's run will have no name server, known before it starts (for the run's first lines). */
export function nameServerRefusal(): string | undefined {
  try {
    if (Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim()) <= 53) return undefined;
  } catch {
    // Not Linux, or no such setting: binding will tell.
    return undefined;
  }
  return withoutServer(PORT_53);
}

export class RunNames {
  /** Groups whose names are served (by name: a run's group names are unique), with their addresses. */
  private readonly served = new Map<string, string[]>();
  /** What sandboxes keep of the host's resolver configuration, read once per run. */
  private readonly hostResolver = hostResolverConfig();

  private constructor(
    private readonly server: MemberNameServer | undefined,
    private readonly serverAddress: string | undefined,
    /** Where the host's resolv.conf really is; undefined: the sandbox keeps the host's (no name server). */
    private readonly resolvTarget: string | undefined,
    /** Why members' names resolve through /etc/hosts alone, when they do. */
    readonly note: string | undefined,
    private readonly upstream?: Upstream[],
  ) {}

  /** Name servers on the gateways of earlier processes' bridges of this run (adopt). */
  private readonly earlier = new Map<string, Promise<MemberNameServer | undefined>>();

  /**
   * Starts the run's name server where `place` says (never for plain
   * processes: they have no resolv.conf of their own). With the host's
   * network shared, its loopback address follows from `seed` (the run's data
   * directory): a server resuming the run listens where its members' resolv.conf says.
   */
  static async open(place: NamesPlace, seed: string, upstream?: Upstream[]): Promise<RunNames> {
    if (place.kind === "none") return new RunNames(undefined, undefined, undefined, undefined);
    const target = realPathOf("/etc/resolv.conf");
    if (target === undefined)
      return new RunNames(undefined, undefined, undefined, withoutServer("this host has no /etc/resolv.conf to stand in for"));
    let lastError: Error | undefined;
    // A loopback address of its own (another run's, or a resolver's, may hold one): a few tries.
    const hash = createHash("sha256").update(seed).digest();
    for (let attempt = 0; attempt < (place.kind === "netns" ? 1 : 5); attempt++) {
      const bytes = attempt === 0 ? hash : randomBytes(2);
      const address = place.kind === "netns" ? place.gateway : `127.53.${bytes[0]}.${1 + (bytes[1]! % 254)}`;
      try {
        const server = await startServer(address, place.kind === "netns" ? place.subnet : undefined, upstream);
        return new RunNames(server, address, target, undefined, upstream);
      } catch (error) {
        lastError = error as Error;
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
      }
    }
    const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
    const why = code === "EACCES" ? PORT_53 : `it cannot listen on port 53: ${lastError?.message ?? "unknown"}`;
    return new RunNames(undefined, undefined, undefined, withoutServer(why));
  }

  /**
   * A member an earlier troupe process started (a server resuming the run):
   * its group's names are answered again where its resolv.conf says. In
   * netns mode that is the gateway of the bridge it is on, the earlier
   * process's (kept while members are on it): a server of its own there.
   */
  async adopt(launch: TaskLaunch): Promise<void> {
    if (!this.server) return;
    const gateway = this.subnetOf(launch.address);
    if (gateway === undefined) return this.serve(launch);
    let earlier = this.earlier.get(gateway);
    if (!earlier) {
      // Without it the re-attached members' names do not resolve by DNS (their hosts files still name them).
      earlier = startServer(gateway, `${gateway.replace(/\.1$/, ".0")}/24`, this.upstream).catch(
        tolerated("cannot answer names on an earlier bridge's gateway", { gateway, task: launch.taskName }, "warn"),
      );
      this.earlier.set(gateway, earlier);
    }
    (await earlier)?.serveGroup(launch.groupName, launch.hosts);
  }

  /** In netns mode, the gateway of `address`'s /24 when it is not this run network's (an earlier process's bridge). */
  private subnetOf(address: string): string | undefined {
    if (this.serverAddress === undefined || this.serverAddress.startsWith("127.")) return undefined;
    const mine = this.serverAddress.split(".").slice(0, 3).join(".");
    const its = address.split(".").slice(0, 3).join(".");
    return its === mine || address.split(".").length !== 4 ? undefined : `${its}.1`;
  }

  /** Whether a name server answers for the members. */
  get serving(): boolean {
    return this.server !== undefined;
  }

  /** The group's names are answered from now on (before any member's command can start). */
  serve(launch: TaskLaunch): void {
    if (!this.server || this.served.has(launch.groupName)) return;
    this.served.set(launch.groupName, Object.values(launch.hosts));
    this.server.serveGroup(launch.groupName, launch.hosts);
  }

  /** The group that had these addresses has ended: its names are no longer answered. */
  release(addresses: readonly string[]): void {
    if (!this.server) return;
    this.server.forget(addresses);
    for (const earlier of this.earlier.values()) void earlier.then((s) => s?.forget(addresses));
    const gone = new Set(addresses);
    for (const [group, own] of this.served) if (own.some((a) => gone.has(a))) this.served.delete(group);
  }

  /** The sandbox's /etc/hosts and /etc/resolv.conf (staged in `dir` for bwrap). */
  files(launch: TaskLaunch, dir: string): MemberNameFiles {
    const hosts = { text: hostsText(launch, this.server !== undefined), file: join(dir, "hosts") };
    if (!this.server || this.resolvTarget === undefined) return { hosts };
    const text = resolvConfText(launch, this.serverAddress!, this.hostResolver);
    return { hosts, resolver: { text, file: join(dir, "resolv.conf"), target: this.resolvTarget } };
  }

  async close(): Promise<void> {
    await this.server?.close();
    await Promise.all([...this.earlier.values()].map((earlier) => earlier.then((s) => s?.close())));
  }
}

/** A name server on `address`, answering the run's members: those of `subnet` (netns: each its own group's names), or loopback. */
function startServer(address: string, subnet: string | undefined, upstream: Upstream[] | undefined): Promise<MemberNameServer> {
  const prefix = subnet === undefined ? undefined : parseCidr(subnet);
  const accepts =
    prefix === undefined
      ? (source: string) => source.startsWith("127.")
      : (source: string) => {
          const value = parseIPv4(source);
          return value !== undefined && value - prefix.base >= 0 && value - prefix.base < 2 ** (32 - prefix.length);
        };
  return MemberNameServer.start({ address, accepts, scopeBySource: prefix !== undefined, upstream });
}

function realPathOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    // No resolv.conf on this host: none to mount over.
    return undefined;
  }
}
