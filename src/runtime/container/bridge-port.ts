/**
 * Isolating a container's bridge port: a port marked isolated forwards only
 * to ports that are not (the bridge itself: the gateway and the way out), so
 * containers that share a network cannot reach each other.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** `peerIndex` is the host-side interface index of the container's eth0 peer (its iflink, which troupe-init reports). */
export async function isolateBridgePort(peerIndex: number): Promise<void> {
  const name = interfaceWithIndex(peerIndex);
  if (!name) throw new Error(`cannot isolate the container's network: no interface with index ${peerIndex} on this machine`);
  let bridge: string | undefined;
  try {
    bridge = realpathSync(`/sys/class/net/${name}/master`);
  } catch {
    bridge = undefined;
  }
  if (!bridge) throw new Error(`cannot isolate the container's network: ${name} is on no bridge`);
  await execFileAsync("bridge", ["link", "set", "dev", name, "isolated", "on"]);
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
