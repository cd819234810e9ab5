/**
 * How a container finds its group's members (group-names.ts decides who
 * answers): by the engine's name server, each member aliased by its name
 * (`TASK.GROUP.troupe.internal`, member-names.ts) and its bare task name; by
 * troupe's name server on the network's gateway, the resolver searching the
 * group's domain; or, on the run's shared network of single tasks (and where
 * neither can serve), by /etc/hosts. /etc/hosts always names the container itself.
 */
import type { TaskLaunch } from "../types.js";
import { groupDomain, memberName, nameLabel } from "../member-names.js";
import type { ContainerSpec } from "./backend.js";

export interface NetworkLease {
  name: string;
  /** Shared by single-task groups, ports isolated. */
  shared: boolean;
  /** Who answers the members' names by DNS (none: /etc/hosts names them all). */
  names: "engine" | "troupe" | "none";
  /** The network's first three octets; its gateway is `prefix.1`. */
  prefix: string;
}

/** The container's network, its aliases there and its /etc/hosts entries. */
export function memberNetwork(launch: TaskLaunch, lease: NetworkLease): Pick<ContainerSpec, "network" | "extraHosts" | "dns"> {
  const own = memberName(launch.groupName, launch.taskName);
  const network = { name: lease.name, ip: launch.address, aliases: [] as string[] };
  if (lease.names === "engine") {
    network.aliases.push(nameLabel(launch.taskName), own);
    return { network, extraHosts: { [own]: launch.address } };
  }
  if (lease.names === "troupe")
    return {
      network,
      extraHosts: { [own]: launch.address },
      dns: { servers: [`${lease.prefix}.1`], search: [groupDomain(launch.groupName)] },
    };
  const extraHosts: Record<string, string> = {};
  for (const [task, address] of Object.entries(launch.hosts)) {
    extraHosts[memberName(launch.groupName, task)] = address;
    extraHosts[nameLabel(task)] = address;
  }
  return { network, extraHosts };
}

/**
 * A member on the machine's own network (`hostNetwork: true`): the engine's
 * host network, no address or alias of its own; its siblings by their
 * addresses in /etc/hosts (no group name server answers there).
 */
export function hostNetworkMember(launch: TaskLaunch): Pick<ContainerSpec, "network" | "extraHosts" | "dns"> {
  const extraHosts: Record<string, string> = {};
  for (const [task, address] of Object.entries(launch.hosts)) {
    extraHosts[memberName(launch.groupName, task)] = address;
    extraHosts[nameLabel(task)] = address;
  }
  return { network: { name: HOST_NETWORK, ip: "", aliases: [] }, extraHosts };
}

/** The engines' name of the machine's own network. */
export const HOST_NETWORK = "host";
