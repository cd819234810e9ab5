/**
 * Who answers a container group's names by DNS, and making sure they do
 * before any member's command starts:
 * - the engine (docker's DNS; podman's aardvark-dns through its API service):
 *   a network with DNS, members aliased; with a local podman as root, a
 *   member is ready only once aardvark-dns, which learns names on a signal
 *   after the container is up, answers its name on the gateway;
 * - troupe (podman's CLI as root): the network has no DNS (aardvark-dns
 *   would be started under a task's `podman run` and hold its output open);
 *   troupe's name server (runtime/name-server.ts) listens on the network's
 *   gateway once the first member has brought the bridge up, answering the
 *   network's containers, before the barrier opens;
 * - none (podman's CLI without root: its bridges are out of troupe's reach):
 *   /etc/hosts names every member (getaddrinfo finds them, nslookup does not).
 */
import { tolerated } from "../../util/log.js";
import { MemberNameServer } from "../name-server.js";
import { memberName } from "../member-names.js";
import type { TaskLaunch } from "../types.js";
import type { ContainerBackend } from "./backend.js";
import type { NetworkLease } from "./member-network.js";
import { nameResolves } from "./name-ready.js";

export class GroupNames {
  readonly mode: NetworkLease["names"];
  /** The engine's answers can be checked (its name server is on the gateway, which troupe reaches). */
  private readonly checkEngine: boolean;
  /** troupe's name server of each network (by network name). */
  private readonly servers = new Map<string, Promise<MemberNameServer>>();

  constructor(backend: ContainerBackend) {
    const root = process.getuid?.() === 0;
    this.mode = backend.engineDns ? "engine" : backend.local && root ? "troupe" : "none";
    this.checkEngine = backend.engineDns && backend.local && root && backend.engine === "podman";
  }

  /** Why `{{host:...}}` names will not resolve by DNS, when they will not (for the run's first lines). */
  note(): string | undefined {
    if (this.mode !== "none") return undefined;
    return "podman's CLI without root: {{host:...}} names resolve through /etc/hosts only (getaddrinfo finds them, nslookup does not)";
  }

  /** Resolves once the member's group's names are answered (the member is up on its network). */
  async ready(lease: NetworkLease, launch: TaskLaunch): Promise<void> {
    const gateway = `${lease.prefix}.1`;
    if (lease.names === "engine" && this.checkEngine) {
      await nameResolves(gateway, memberName(launch.groupName, launch.taskName), launch.address);
    } else if (lease.names === "troupe") {
      let server = this.servers.get(lease.name);
      if (!server) {
        const inNetwork = (source: string) => source.startsWith(`${lease.prefix}.`);
        server = MemberNameServer.start({ address: gateway, accepts: inNetwork, scopeBySource: false });
        // Not kept once it failed (the next member tries again); this member's failure is reported just below.
        server.catch(() => this.servers.delete(lease.name));
        this.servers.set(lease.name, server);
      }
      const started = await server.catch((error: Error) => {
        throw new Error(`no name server for the group on ${gateway}: ${error.message}`);
      });
      started.serveGroup(launch.groupName, launch.hosts);
    }
  }

  /**
   * A member an earlier troupe process started (a server resuming the run):
   * where troupe answered its group's names, it does again, on its network's
   * gateway (its resolv.conf names it). A group of one is on the shared network, which has none.
   */
  async adopt(launch: TaskLaunch): Promise<void> {
    if (this.mode !== "troupe" || Object.keys(launch.hosts).length < 2) return;
    const prefix = launch.address.split(".").slice(0, 3).join(".");
    // Without it the re-attached members' names do not resolve by DNS (their hosts files still name them).
    await this.ready({ name: `resumed ${prefix}`, shared: false, names: "troupe", prefix }, launch).catch(
      tolerated("cannot answer names for a re-attached group", { task: launch.taskName, network: prefix }, "warn"),
    );
  }

  /** The network goes: so does its name server. */
  async release(network: string): Promise<void> {
    const server = this.servers.get(network);
    this.servers.delete(network);
    // One that never started (reported then) has nothing to close.
    await server?.then((s) => s.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((network) => this.release(network)));
  }
}
