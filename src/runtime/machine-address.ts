/**
 * The machine's own address, where a task on the machine's network
 * (`hostNetwork: true`) is reached by its siblings: the first IPv4 address
 * of an interface that is up and not loopback, in the order the kernel lists
 * them (the one its default route usually leaves by), or loopback where the
 * machine has no other. Members in network namespaces of their own or on a
 * container network reach it through their gateway, as any address of the
 * machine.
 */
import { networkInterfaces } from "node:os";

/** TROUPE_HOST_ADDRESS, when set, names it instead (a machine whose first interface is not the one to use). */
export function machineAddress(): string {
  const chosen = process.env.TROUPE_HOST_ADDRESS;
  if (chosen) return chosen;
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    // troupe's own bridges and veths, and the engines', are not the machine's address.
    if (/^(tr|v|podman|docker|cni|br-|virbr|kube|flannel|cali)/.test(name)) continue;
    const found = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (found) return found.address;
  }
  return "127.0.0.1";
}
