/**
 * The host side of a container's network, as troupe needs it: the bridge
 * gets a fixed MAC address, and a port can be isolated.
 *
 * A Linux bridge without a set address takes the lowest of its ports'; when
 * that port leaves (a task ends), the bridge's address changes, and the
 * containers still on it keep sending to the old one (their ARP cache) for
 * up to a minute: no gateway, no egress. Setting the address once keeps it.
 *
 * A port marked isolated forwards only to ports that are not (the bridge
 * itself: the gateway and the way out), so containers that share a network
 * cannot reach each other.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const pinned = new Set<string>();

/**
 * `peerIndex` is the host-side interface index of the container's eth0 peer
 * (its iflink, which troupe-init reports). Pins the bridge's address the first
 * time troupe sees that bridge, and isolates the port when asked to.
 */
export async function prepareBridgePort(peerIndex: number, isolate: boolean): Promise<void> {
  const port = interfaceWithIndex(peerIndex);
  if (!port) throw new Error(`cannot set up the container's network: no interface with index ${peerIndex} on this machine`);
  let bridge: string;
  try {
    bridge = basename(realpathSync(`/sys/class/net/${port}/master`));
  } catch {
    throw new Error(`cannot set up the container's network: ${port} is on no bridge`);
  }
  if (!pinned.has(bridge)) {
    pinned.add(bridge);
    const address = readFileSync(`/sys/class/net/${bridge}/address`, "utf8").trim();
    await execFileAsync("ip", ["link", "set", "dev", bridge, "address", address]);
  }
  if (isolate) await execFileAsync("bridge", ["link", "set", "dev", port, "isolated", "on"]);
}

function interfaceWithIndex(index: number): string | undefined {
  for (const name of readdirSync("/sys/class/net")) {
    try {
      if (Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8")) === index) return name;
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}
