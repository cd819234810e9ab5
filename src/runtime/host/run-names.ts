/**
 * Names for a host run's members: the run's name server (name-server.ts),
 * where it listens and who it answers, and what each sandbox is given to
 * resolve with (sandbox-names.ts). In netns mode it listens on the run
 * bridge's gateway and tells each member its own group's names; with the
 * host's network shared, on a loopback address of its own (127.53.X.Y),
 * where any local process could ask it, so it tells the run's names only,
 * which are no secret there (every port is shared too). Where it cannot
 * listen (port 53 needs root, or net.ipv4.ip_unprivileged_port_start <= 53),
 * names resolve through /etc/hosts alone, and the run says so.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { TaskLaunch } from "../types.js";
import { parseCidr, parseIPv4 } from "./net-address.js";
import { hostResolverConfig, MemberNameServer, type Upstream } from "./name-server.js";
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
  ) {}

  /** Starts the run's name server where `place` says (never for plain processes: they have no resolv.conf of their own). */
  static async open(place: NamesPlace, upstream?: Upstream[]): Promise<RunNames> {
    if (place.kind === "none") return new RunNames(undefined, undefined, undefined, undefined);
    const target = realPathOf("/etc/resolv.conf");
    if (target === undefined)
      return new RunNames(undefined, undefined, undefined, withoutServer("this host has no /etc/resolv.conf to stand in for"));
    const subnet = place.kind === "netns" ? parseCidr(place.subnet) : undefined;
    const accepts =
      subnet === undefined
        ? (source: string) => source.startsWith("127.")
        : (source: string) => {
            const value = parseIPv4(source);
            return value !== undefined && value - subnet.base >= 0 && value - subnet.base < 2 ** (32 - subnet.length);
          };
    let lastError: Error | undefined;
    // A loopback address of its own (another run's, or a resolver's, may hold one): a few tries.
    for (let attempt = 0; attempt < (place.kind === "netns" ? 1 : 5); attempt++) {
      const address = place.kind === "netns" ? place.gateway : `127.53.${randomBytes(1)[0]}.${1 + (randomBytes(1)[0]! % 254)}`;
      try {
        const server = await MemberNameServer.start({ address, accepts, scopeBySource: place.kind === "netns", upstream });
        return new RunNames(server, address, target, undefined);
      } catch (error) {
        lastError = error as Error;
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
      }
    }
    const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
    const why = code === "EACCES" ? PORT_53 : `it cannot listen on port 53: ${lastError?.message ?? "unknown"}`;
    return new RunNames(undefined, undefined, undefined, withoutServer(why));
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
  }
}

function realPathOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
