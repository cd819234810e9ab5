/**
 * How a host sandbox resolves names: its /etc/hosts and /etc/resolv.conf.
 * Where troupe's name server runs for the run, the group's names come from
 * it (nslookup and getaddrinfo alike), the resolver searching the group's
 * domain first so that a bare task name works too, and /etc/hosts names only
 * the member itself; where it cannot run, /etc/hosts names every member
 * (getaddrinfo finds them, a DNS client such as nslookup does not).
 */
import type { TaskLaunch } from "../types.js";
import { groupDomain, memberName } from "../member-names.js";

/** Host names: localhost, and the member itself (or, without a name server, every member), by full and bare name. */
export function hostsText(launch: TaskLaunch, nameServer: boolean): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const [name, address] of Object.entries(launch.hosts)) {
    if (nameServer && name !== launch.taskName) continue;
    lines.push(`${address}\t${memberName(launch.groupName, name)} ${name}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * The member's resolver: troupe's name server alone (it passes other names on
 * to the host's resolvers), the group's domain searched before the host's own
 * search domains (at most six in all, as glibc reads them), the host's options.
 */
export function resolvConfText(launch: TaskLaunch, nameServer: string, host: { search: string[]; options: string[] }): string {
  const search = [groupDomain(launch.groupName), ...host.search].slice(0, 6);
  const lines = [`nameserver ${nameServer}`, `search ${search.join(" ")}`];
  if (host.options.length > 0) lines.push(`options ${host.options.join(" ")}`);
  return lines.join("\n") + "\n";
}
