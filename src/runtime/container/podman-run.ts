/**
 * The arguments of one task attempt's `podman run` (after `podman`): what the
 * container runtime's CLI backend runs on this machine, and what the Slurm
 * runtime's helper runs on a node (runtime/slurm/node-container.ts). The
 * image and the command always follow `--`: never read as flags.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gpuCdiKind, SECRET_ENV_FILE, type ContainerSpec } from "./backend.js";
import { podmanMountArguments } from "./bind-mounts.js";

/** `passthrough`: podman 4's `--log-driver passthrough` (the container writes to podman's own output). */
export function podmanRunArguments(spec: ContainerSpec, passthrough: boolean): string[] {
  const args = ["run", "--rm", "--pull=never", "--name", spec.name, "--hostname", spec.hostname];
  // No --workdir: the command starts where its image says (its WORKDIR, else /), as OSMO's pods do.
  // Signals go to the container through the engine (stop), not through this podman run: it would forward
  // them even after its container ended, and write its failure to do so into the task's log (its stderr).
  args.push("--sig-proxy=false");
  args.push("--entrypoint", JSON.stringify(spec.entrypoint));
  // Work podman need not do for troupe: the container writes to the task's log (or the live view's pipe) itself,
  // not through conmon, which would also keep a copy in podman's storage; conmon stays in this process's cgroup,
  // not one made (and removed) for each container. The container's own cgroup and its limits are as before.
  if (passthrough) args.push("--log-driver", "passthrough");
  args.push("--cgroups", "no-conmon");
  // A network of troupe's has the member's address; the host's (a Slurm node's) has none to give.
  args.push("--network", spec.network.name);
  if (spec.network.ip) args.push("--ip", spec.network.ip);
  for (const alias of spec.network.aliases) args.push("--network-alias", alias);
  for (const server of spec.dns?.servers ?? []) args.push("--dns", server);
  for (const domain of spec.dns?.search ?? []) args.push("--dns-search", domain);
  for (const [name, address] of Object.entries(spec.extraHosts)) args.push("--add-host", `${name}:${address}`);
  for (const [key, value] of Object.entries(spec.labels)) args.push("--label", `${key}=${value}`);
  args.push(...environmentArguments(spec));
  args.push(...podmanMountArguments(spec.mounts));
  if (spec.cpus) args.push("--cpus", String(spec.cpus));
  if (spec.memoryBytes) args.push("--memory", `${spec.memoryBytes}b`, "--memory-swap", `${spec.memoryBytes}b`);
  // Its own GPUs, no others: one CDI device each (the CDI spec puts the device nodes, libraries and variables in).
  for (const index of spec.gpuDevices ?? []) args.push("--device", `${gpuCdiKind()}=${index}`);
  if (spec.privileged) args.push("--privileged");
  if (spec.shmBytes) args.push("--shm-size", `${spec.shmBytes}b`);
  if (spec.ownerSocket) args.push("--preserve-fds", "1");
  args.push("--", spec.image, ...spec.command);
  return args;
}

/**
 * `--env` for each variable; those holding a secret (a credential's) go
 * through an --env-file of the attempt's (0600, in its directory) instead,
 * out of every process list. A value with a line break cannot be in such a
 * file: it stays an argument.
 */
function environmentArguments(spec: ContainerSpec): string[] {
  const secrets = new Set(spec.secrets ?? []);
  const args: string[] = [];
  const hidden: string[] = [];
  for (const [key, value] of Object.entries(spec.env)) {
    if (secrets.has(value) && !/[\r\n]/.test(value)) hidden.push(`${key}=${value}\n`);
    else args.push("--env", `${key}=${value}`);
  }
  if (hidden.length > 0) {
    const file = join(spec.hostDir, SECRET_ENV_FILE);
    writeFileSync(file, hidden.join(""), { mode: 0o600 });
    args.push("--env-file", file);
  }
  return args;
}
