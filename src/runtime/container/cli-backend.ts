/**
 * podman through its CLI: one `podman run` per task attempt, attached, its
 * output going straight to the task's log, started by troupe-spawner (Node's
 * child_process without it), and a few short podman commands for images and
 * networks. Names and images always come after `--`: never read as flags.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { isAbsolute, join } from "node:path";
import type { RegistryAuth } from "../../port/index.js";
import { onPath, whichPath } from "../../util/executables.js";
import { tolerated, type LogFields } from "../../util/log.js";
import { hasMaskable } from "../../util/secret-mask.js";
import { startWithNode, type SandboxProcess } from "../host/sandbox-process.js";
import { sharedSpawner, spawnerPath } from "../host/spawner.js";
import {
  INIT_WITHOUT_COMMAND,
  NETWORK_POOL,
  type ContainerBackend,
  type ContainerSpec,
  type OwnedResources,
  type StartedContainer,
  type StartTry,
} from "./backend.js";
import { podmanMountArguments } from "./bind-mounts.js";
import { podmanRunArguments } from "./podman-run.js";
import { podmanAuthFile } from "./registry-login.js";
import { engineEnvironment, resolvedPathVariables } from "./engine-env.js";
import {
  addIsolationRule,
  deleteIsolationRules,
  listIsolationRules,
  removeIsolationRule,
  type IsolationRule,
} from "./network-isolation.js";

const execFileAsync = promisify(execFile);

export class PodmanCliBackend implements ContainerBackend {
  readonly engine = "podman" as const;
  readonly local = true;
  readonly engineDns = false;
  /** troupe-spawner, when it is built (looked up once, not for every attempt). */
  private readonly spawnerBinary = spawnerPath();
  /** Kept attempts run `podman run` under troupe-spawner's keepers (the others are forked by it too, where it is built). */
  readonly keepsContainers: boolean = this.spawnerBinary !== undefined;
  /** As root, troupe keeps its networks apart itself (network-isolation.ts). */
  private readonly ownIsolation = process.getuid?.() === 0 && onPath("iptables");
  /** Network -> its isolation rule going in. */
  private readonly isolations = new Map<string, Promise<void>>();
  /** Network -> its bridge, for the networks whose isolation rule may be troupe's. */
  private readonly bridges = new Map<string, string>();

  /** podman 4 passes a container's output streams through (`--log-driver passthrough`). */
  private readonly passthrough: boolean;
  /**
   * The paths of troupe's environment that were relative, made absolute, as
   * `NAME=VALUE` for `env`: `podman run` runs in the attempt's directory
   * (engine-env.ts). The short podman commands get the same (`podman`).
   */
  private readonly resolvedEnv = Object.entries(resolvedPathVariables()).map(([name, value]) => `${name}=${value}`);

  private constructor(
    /** The podman executable's absolute path (the engine check's cache is keyed on it). */
    readonly binary: string,
    readonly version: string,
  ) {
    this.passthrough = Number(version.split(".")[0]) >= 4;
  }

  /** Rejects unless `podman version` answers. */
  static async connect(binary = whichPath("podman")): Promise<PodmanCliBackend> {
    if (binary === undefined) throw new Error("podman is not installed");
    if (!isAbsolute(binary)) throw new Error(`podman's path must be absolute, not ${binary}`);
    const { stdout } = await podman(binary, ["version", "--format", "{{.Client.Version}}"], 15_000);
    return new PodmanCliBackend(binary, stdout.trim());
  }

  /**
   * Starts one tiny container as tasks' are started (troupe-init as its
   * entrypoint, bind-mounted, the same podman options) on the empty
   * directory `rootfs` instead of an image, so that no image is needed:
   * troupe-init, given no command, says so and exits 127. Whether it
   * started, and otherwise podman's own reason; undefined when podman did
   * not answer within `timeoutMs` (nothing can be said).
   */
  async tryStart(rootfs: string, init: string, timeoutMs: number): Promise<StartTry> {
    const args = ["run", "--rm", "--network", "none", "--sig-proxy=false", "--cgroups", "no-conmon"];
    if (this.passthrough) args.push("--log-driver", "passthrough");
    args.push(
      ...podmanMountArguments([{ source: init, target: "/.troupe/init", readOnly: true }]),
      "--entrypoint",
      JSON.stringify(["/.troupe/init"]),
      "--rootfs",
      "--",
      rootfs,
    );
    try {
      // In the directory itself: conmon's files land there, not in troupe's working directory.
      await execFileAsync(this.binary, args, { timeout: timeoutMs, env: engineEnvironment(), cwd: rootfs, encoding: "utf8" });
      return { started: false, reason: "troupe-init exited 0 where it should have exited 127" };
    } catch (error) {
      const e = error as Error & { stdout?: string; stderr?: string; code?: number | string; killed?: boolean };
      const output = `${e.stdout ?? ""}${e.stderr ?? ""}`;
      if (output.includes(INIT_WITHOUT_COMMAND)) return { started: true, reason: "" };
      if (e.killed) return undefined;
      return { started: false, reason: podmansReason(output) ?? e.message };
    }
  }

  describe(): string {
    return `podman ${this.version} (CLI)`;
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await podman(this.binary, ["image", "exists", "--", image]);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === 1) return false;
      throw error;
    }
  }

  async pull(image: string, signal?: AbortSignal, auth?: RegistryAuth): Promise<void> {
    if (!auth) {
      await podman(this.binary, ["pull", "--quiet", "--", image], 0, signal);
      return;
    }
    // The login goes in an authfile of this pull's own (a 0700 directory, the file 0600, removed after), never on
    // podman's command line, which every user of the machine may read (`--creds`).
    const dir = await mkdtemp(join(tmpdir(), "troupe-pull-"));
    try {
      const file = join(dir, "auth.json");
      await writeFile(file, podmanAuthFile(auth), { mode: 0o600 });
      await podman(this.binary, ["pull", "--quiet", "--authfile", file, "--", image], 0, signal);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async createNetwork(
    name: string,
    subnet: string,
    gateway: string,
    labels: Record<string, string>,
    options: { dns?: boolean } = {},
  ): Promise<void> {
    // Kept apart from troupe's other networks (podman routes between its networks unless told not to): as root by
    // one rule of troupe's (network-isolation.ts), else by podman's isolate option, which costs every container more.
    const own = this.ownIsolation;
    const args = [
      "network",
      "create",
      ...(own ? [] : ["--opt", "isolate=true"]),
      ...(options.dns ? [] : ["--disable-dns"]),
      "--subnet",
      subnet,
    ];
    args.push("--gateway", gateway);
    for (const [key, value] of Object.entries(labels)) args.push("--label", `${key}=${value}`);
    await podman(this.binary, [...args, "--", name]);
    // The rule goes in while the first containers come up: they are ready (and released) only once it is there.
    if (!own) return;
    const separated = this.separate(name);
    separated.catch(() => undefined); // awaited by the network's containers, which report it
    this.isolations.set(name, separated);
  }

  private async separate(name: string): Promise<void> {
    try {
      const { stdout } = await podman(this.binary, ["network", "inspect", "--format", "{{.NetworkInterface}}", "--", name]);
      this.bridges.set(name, stdout.trim());
      await addIsolationRule(name, stdout.trim(), NETWORK_POOL.cidr);
    } catch (error) {
      throw new Error(`cannot keep the network ${name} apart from troupe's others: ${(error as Error).message}`);
    }
  }

  async removeNetwork(name: string): Promise<void> {
    // A rule that failed to go in was reported by the network's containers; it is only waited for here.
    await this.isolations.get(name)?.catch(() => undefined);
    this.isolations.delete(name);
    const bridge = this.bridges.get(name);
    this.bridges.delete(name);
    // The rule first: should troupe die in between, the network is left for a sweep, not a rule for nothing.
    if (bridge !== undefined) await removeIsolationRule(name, bridge, NETWORK_POOL.cidr);
    await podman(this.binary, ["network", "rm", "--force", "--", name]).catch(
      unlessGone("could not remove the network", { network: name }),
    );
  }

  async removeIdleNetwork(name: string): Promise<boolean> {
    // As in removeNetwork: reported by the network's containers.
    await this.isolations.get(name)?.catch(() => undefined);
    // Without --force podman refuses a network that a container is on: the answer, not a failure.
    if (
      !(await podman(this.binary, ["network", "rm", "--", name]).then(
        () => true,
        (error: unknown) => (tolerated("the network was not removed (in use?)", { network: name })(error), false),
      ))
    )
      return false;
    // Its rule after it (it held while containers were on it); should troupe die in between, a sweep removes it.
    const bridge = this.bridges.get(name);
    this.bridges.delete(name);
    if (bridge !== undefined) await removeIsolationRule(name, bridge, NETWORK_POOL.cidr);
    return true;
  }

  start(spec: ContainerSpec, logPath: string, onOutput?: (chunk: Buffer) => void, keepDir?: string): StartedContainer {
    const args = podmanRunArguments(spec, this.passthrough);
    // Its keeper writes the log without troupe: a task with secrets to mask is not kept (it ends with troupe).
    const keep = keepDir !== undefined && this.keepsContainers && !hasMaskable(spec.secrets) ? keepDir : undefined;
    // Forked by troupe-spawner where it is built: a fork of Node costs troupe's main thread milliseconds per task.
    // The process's helper, looked up at every start: should it have died, the next start has a new one.
    const startProcess = this.spawnerBinary ? sharedSpawner(this.spawnerBinary).start : startWithNode;
    let started: SandboxProcess | undefined;
    const ended = new Promise<{ code: number; error?: string }>((resolve) => {
      // Output straight to the log file unless someone watches live (kept attempts: always to the file).
      started = startProcess(
        // In the attempt's own directory (env -C execs podman in place): conmon writes its `oom` file where podman runs.
        {
          argv: ["env", "-C", spec.hostDir, ...this.resolvedEnv, this.binary, ...args],
          logPath,
          live: onOutput !== undefined && keep === undefined,
          keep,
          secrets: spec.secrets,
        },
        {
          status: () => undefined,
          output: onOutput,
          exit: (code, error) => resolve(error === undefined ? { code: code ?? 128 } : { code: 127, error: `cannot run podman: ${error}` }),
        },
      );
      // podman does not read the barrier (fd 4): the container's own (troupe-init's "go" file) holds the command.
      started.release();
    });
    let done = false;
    void ended.then(() => (done = true));
    // Again until it has ended: a kill that comes while podman is still creating the container finds none.
    const kill = async () => {
      for (let attempt = 0; !done && attempt < 60; attempt++) {
        await this.signalContainer(spec.name, "SIGKILL");
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
    };
    const isolated = this.isolations.get(spec.network.name);
    return {
      ended,
      ...(isolated && { ready: isolated }),
      kill,
      stop: async (graceMs) => {
        if (done) return;
        // To the container's PID 1 (troupe-init), which passes it to the command; a kill after the grace.
        await this.signalContainer(spec.name, "SIGTERM");
        const timer = setTimeout(() => void kill(), graceMs);
        await ended;
        clearTimeout(timer);
      },
    };
  }

  async stopContainer(name: string, graceMs: number): Promise<void> {
    const args = graceMs > 0 ? ["stop", "--time", String(Math.max(1, Math.ceil(graceMs / 1000))), "--", name] : ["kill", "--", name];
    // A container whose last stop was cut short (its server killed meanwhile) stays "stopping" for podman, and
    // refuses a stop or a kill: removing it still ends it (its podman run, under its keeper, then ends too).
    await podman(this.binary, args, graceMs + 60_000).catch((error: unknown) => {
      tolerated("podman did not stop the container: removing it", { container: name })(error);
      return podman(this.binary, ["rm", "--force", "--", name]).catch(unlessGone("could not remove the container", { container: name }));
    });
  }

  /**
   * `podman kill --signal`, forked by troupe-spawner where it is built (a stop
   * is one per member at a group's end). Its complaints (a container that
   * ended meanwhile) go nowhere: a task's log holds only the task's output.
   */
  private signalContainer(name: string, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const argv = ["env", ...this.resolvedEnv, this.binary, "kill", "--signal", signal, "--", name];
    const startProcess = this.spawnerBinary ? sharedSpawner(this.spawnerBinary).start : startWithNode;
    return new Promise((resolve) => {
      startProcess({ argv, logPath: "/dev/null", live: false }, { status: () => undefined, exit: () => resolve() }).release();
    });
  }

  async containerNames(): Promise<Set<string> | undefined> {
    // Not an answer when podman fails (a timeout, its own trouble): nothing is taken for gone then.
    return podman(this.binary, ["ps", "--all", "--format", "{{.Names}}"], 30_000).then(
      ({ stdout }) => new Set(stdout.split("\n").filter(Boolean)),
      () => undefined,
    );
  }

  async owned(key: string, containersIf?: (network: { labels: Record<string, string> }) => boolean): Promise<OwnedResources> {
    const parse = <T>(text: string): T[] => (text.trim() ? (JSON.parse(text) as T[]) : []);
    const listContainers = async () =>
      parse<{ Id: string; Labels: Record<string, string> | null }>(
        (await podman(this.binary, ["ps", "--all", "--filter", `label=${key}`, "--format", "json"])).stdout,
      ).map((c) => ({ id: c.Id, labels: c.Labels ?? {} }));
    const listNetworks = async () =>
      parse<{ name: string; labels?: Record<string, string> | null; network_interface?: string }>(
        (await podman(this.binary, ["network", "ls", "--filter", `label=${key}`, "--format", "json"])).stdout,
      ).map((n) => {
        // So that removing one (a sweep) also removes its isolation rule.
        if (n.network_interface) this.bridges.set(n.name, n.network_interface);
        return { name: n.name, labels: n.labels ?? {} };
      });
    if (!containersIf) {
      const [containers, networks] = await Promise.all([listContainers(), listNetworks()]);
      return { containers, networks };
    }
    const networks = await listNetworks();
    return { containers: networks.some(containersIf) ? await listContainers() : [], networks };
  }

  async isolationRules(): Promise<IsolationRule[]> {
    return this.ownIsolation ? listIsolationRules() : [];
  }

  async removeIsolationRules(rules: readonly IsolationRule[]): Promise<void> {
    await deleteIsolationRules(rules);
  }

  async removeContainer(id: string): Promise<void> {
    await podman(this.binary, ["rm", "--force", "--", id]).catch(unlessGone("could not remove the container", { container: id }));
  }

  async close(): Promise<void> {
    // Kept attempts live on without it; the others were stopped by the runtime before.
    // The helper is the process's (sharedSpawner), not this backend's to end.
  }
}

/**
 * Why podman could not start a container, from its output: its last line
 * that says something (its own log lines, and its complaint that conmon
 * told it nothing, which follows the OCI runtime's own words when the
 * output is passed through, say nothing).
 */
export function podmansReason(output: string): string | undefined {
  const said = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !/^time="[^"]*" level=/.test(line) && !/no logs from conmon/.test(line));
  return said.pop()?.replace(/^Error: /, "");
}

/**
 * The handler of a failed removal: one of something already gone (it ended, a sweep was first) is no failure;
 * any other is logged, and what is left goes with a later sweep.
 */
function unlessGone(message: string, fields: LogFields): (error: unknown) => undefined {
  const report = tolerated(message, fields, "warn");
  return (error) => (/no such|not found/i.test((error as Error).message) ? undefined : report(error));
}

/** A podman command; rejects with podman's own message (its last line of stderr) and its exit code. */
async function podman(binary: string, args: string[], timeoutMs = 60_000, signal?: AbortSignal): Promise<{ stdout: string }> {
  try {
    const { stdout } = await execFileAsync(binary, args, { timeout: timeoutMs, maxBuffer: 64 << 20, env: engineEnvironment(), signal });
    return { stdout };
  } catch (error) {
    const e = error as Error & { stderr?: string; code?: number | string };
    const message = (e.stderr ?? "").trim().split("\n").filter(Boolean).pop() ?? e.message;
    throw Object.assign(new Error(message.replace(/^Error: /, "")), { code: e.code });
  }
}
