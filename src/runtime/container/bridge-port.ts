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
 * cannot reach each other. The mark is written to the port's sysfs file
 * (`brport/isolated`): no process per task (the `bridge` command is the
 * fallback where that file is missing).
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** addr_assign_type of an address set by hand (NET_ADDR_SET): the bridge keeps it. */
const ADDRESS_SET = "3";

/**
 * `peerIndex` is the host-side interface index of the container's eth0 peer
 * (its iflink, which troupe-init reports). Pins the bridge's address unless
 * that was done (bridge names are reused by the engine, so the kernel says
 * whether this bridge's was), and isolates the port when asked to.
 */
export async function prepareBridgePort(peerIndex: number, isolate: boolean): Promise<void> {
  const port = interfaceWithIndex(peerIndex);
  if (!port) throw new Error(`cannot set up the container's network: no interface with index ${peerIndex} on this machine`);
  let bridge: string;
  try {
    bridge = basename(readlinkSync(`/sys/class/net/${port}/master`));
  } catch {
    throw new Error(`cannot set up the container's network: ${port} is on no bridge`);
  }
  await pinAddress(bridge);
  if (isolate) await isolatePort(port);
}

/** Pinnings under way, by bridge: containers coming up together on a new bridge wait for one `ip` call. */
const pinning = new Map<string, Promise<unknown>>();

async function pinAddress(bridge: string): Promise<void> {
  const under = pinning.get(bridge);
  if (under) {
    await under;
    return;
  }
  if (readFileSync(`/sys/class/net/${bridge}/addr_assign_type`, "utf8").trim() === ADDRESS_SET) return;
  const address = readFileSync(`/sys/class/net/${bridge}/address`, "utf8").trim();
  const pin = execFileAsync("ip", ["link", "set", "dev", bridge, "address", address]);
  pinning.set(bridge, pin);
  try {
    await pin;
  } finally {
    pinning.delete(bridge);
  }
}

async function isolatePort(port: string): Promise<void> {
  try {
    // Off the event loop: the kernel takes its network lock for it, which podman's network set-up holds a lot.
    await writeFile(`/sys/class/net/${port}/brport/isolated`, "1");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await execFileAsync("bridge", ["link", "set", "dev", port, "isolated", "on"]);
  }
}

/** Interface name -> index, as last read: a container's port is found without reading every interface's index again. */
const indexes = new Map<string, number>();

function interfaceWithIndex(index: number): string | undefined {
  const readIndex = (name: string): number | undefined => {
    try {
      const value = Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8"));
      indexes.set(name, value);
      return value;
    } catch {
      indexes.delete(name); // gone meanwhile
      return undefined;
    }
  };
  const names = readdirSync("/sys/class/net");
  // A new port is most likely a name not seen before; else one seen with this index; else (podman reuses names:
  // veth0, veth1, ...) every index is read again.
  const fresh = names.find((name) => !indexes.has(name) && readIndex(name) === index);
  if (fresh !== undefined) return fresh;
  const known = names.find((name) => indexes.get(name) === index);
  if (known !== undefined && readIndex(known) === index) return known;
  return names.find((name) => readIndex(name) === index);
}
