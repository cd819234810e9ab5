/**
 * How a container finds its group's members: on a group's own network the
 * engine's name server (podman's aardvark-dns, docker's) answers each member
 * by its name (`TASK.GROUP.troupe.internal`, member-names.ts) and by its bare
 * task name, and /etc/hosts names the container itself; on the run's shared
 * network of single tasks, which has no DNS, /etc/hosts names the task itself.
 */
import type { TaskLaunch } from "../types.js";
import { memberName, nameLabel } from "../member-names.js";
import type { ContainerSpec } from "./backend.js";

export interface NetworkLease {
  name: string;
  /** Shared by single-task groups, ports isolated. */
  shared: boolean;
  /** The engine's name server answers the members' names (a group's own network), on the gateway (`prefix.1`). */
  dns: boolean;
  prefix: string;
}

/** The container's network, its aliases there and its /etc/hosts entries. */
export function memberNetwork(launch: TaskLaunch, lease: NetworkLease): Pick<ContainerSpec, "network" | "extraHosts"> {
  const own = memberName(launch.groupName, launch.taskName);
  if (lease.dns) {
    return {
      network: { name: lease.name, ip: launch.address, aliases: [nameLabel(launch.taskName), own] },
      extraHosts: { [own]: launch.address },
    };
  }
  const extraHosts: Record<string, string> = {};
  for (const [task, address] of Object.entries(launch.hosts)) {
    extraHosts[memberName(launch.groupName, task)] = address;
    extraHosts[nameLabel(task)] = address;
  }
  return { network: { name: lease.name, ip: launch.address, aliases: [] }, extraHosts };
}
