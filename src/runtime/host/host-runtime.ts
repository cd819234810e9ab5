/**
 * The host runtime: each task is a process tree of this machine's own tools,
 * in namespaces of its own when troupe runs as root (PID and mount always;
 * network too with netns isolation), so that stopping it leaves nothing
 * behind and its /tmp and files are its own. Without root it falls back to
 * a user namespace where the system allows one, and says so.
 */
import { execFile } from "node:child_process";
import { chownSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { attemptSandboxDir, runSandboxesDir } from "../../model/index.js";
import { onPath } from "../../util/executables.js";
import { bwrapCommand } from "./bwrap-command.js";
import { hasMaskable } from "../../util/secret-mask.js";
import { homeIdentity } from "../home-identity.js";
import { KeptMember, keptStateDir } from "../kept-task.js";
import type { PrepareOptions } from "../../port/index.js";
import type { PreparedMember, RunContext, Runtime, TaskLaunch } from "../types.js";
import { HostMember } from "./host-member.js";
import { canUseNetworkNamespaces, openRunNetwork, sweepRunNetworks, type RunNetwork } from "./network.js";
import { PlainMember } from "./plain-member.js";
import { memberName } from "../member-names.js";
import { nameServerRefusal, RunNames } from "./run-names.js";
import {
  DEFAULT_TASK_USER,
  hiddenPaths,
  type HiddenPath,
  SandboxError,
  sandboxSpec,
  type SandboxPlan,
  type TaskUser,
  writableMountSources,
} from "./sandbox.js";
import { spawnerDirectives } from "./sandbox-commands.js";
import { startWithNode, type StartSandboxProcess } from "./sandbox-process.js";
import { imagesStoodInFor, taskEnvironment } from "./task-environment.js";
import { sharedSpawner, type Spawner, spawnerPath } from "./spawner.js";
import { tolerated } from "../../util/log.js";

const execFileAsync = promisify(execFile);

export type Isolation = "netns" | "none";

export interface HostRuntimeOptions {
  isolation: Isolation;
  /** troupe's home (database, tokens, runs): no task sees it. */
  home: string;
  /** Who tasks run as (as root; default nobody:nogroup). Unprivileged, tasks run as the user troupe runs as. */
  taskUser?: TaskUser;
}

/**
 * Run inside a task's network namespace (by root, from outside): its
 * addresses and routes, then what an unprivileged task may do in a network
 * of its own, as in a container: listen on any port, and ping.
 */
const CONFIGURE_TASK_NETNS =
  'ip -batch "$1" && echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start && echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range';

export class HostRuntime implements Runtime {
  private run: RunContext | undefined;
  private network: RunNetwork | undefined;
  /** The run's name server and what sandboxes resolve with (run-names.ts). */
  private names: RunNames | undefined;
  private readonly privileged = process.getuid?.() === 0;
  private readonly isolation: Isolation;
  private readonly home: string;
  /** In the key of every network of this home's runs (home-identity.ts). */
  private readonly homeId: string;
  private readonly taskUser: TaskUser;
  /** What hides troupe's home from tasks (hiddenPaths), found at the first task. */
  private hidden: HiddenPath[] | undefined;
  private readonly fallbackNote: string | undefined;
  /** Why no task may start here (root, and nothing to sandbox it with). */
  private refusal: string | undefined;
  private nextLoopback = 1;
  private readonly members = new Set<PreparedMember>();
  private pendingAttach: Array<{ pid: number; address: string; done: (error?: Error) => void }> = [];
  private readonly images = new Set<string>();
  private readonly knownDirs = new Set<string>();
  /** Who builds the sandboxes (see sandboxBuilder). */
  private readonly builder: SandboxBuilder = sandboxBuilder(process.getuid?.() === 0);
  private readonly sandboxed = this.builder !== "plain";
  /** undefined: not started yet; null: not built, Node's spawn is used. */
  private spawner: Spawner | null | undefined;
  /** Whether an attempt needed a directory of its own (under sandboxes/, removed at close). */
  private madeSandboxes = false;
  /** Tasks outlive troupe under keepers of troupe-spawner (sandboxed tasks only). */
  readonly keepsTasks = this.sandboxed && spawnerPath() !== undefined;
  /** A sandbox lays mounts over the host's root, read-only beneath: no new top-level directory for OSMO's paths. */
  readonly taskView = { mounts: this.sandboxed, dataPaths: "host" } as const;
  /** A hostNetwork task's sandbox gets no network namespace of its own (without isolation no task has one). */
  readonly hostNetwork = true;
  /** Attempts of an earlier process were re-attached: its leftovers of this run go at close. */
  private reattached = false;

  constructor(options: HostRuntimeOptions) {
    this.home = options.home;
    this.homeId = homeIdentity(options.home);
    this.taskUser = options.taskUser ?? DEFAULT_TASK_USER;
    if (!this.sandboxed && this.privileged) {
      this.isolation = "none";
      this.fallbackNote = this.refusal =
        "neither troupe-spawner nor bubblewrap can build sandboxes here: as root, troupe runs no task without one (apt-get install bubblewrap, or build troupe-spawner with a C compiler)";
      return;
    }
    if (!this.sandboxed) {
      this.isolation = "none";
      this.fallbackNote =
        "bubblewrap (bwrap) is not installed: tasks run as plain processes that share /tmp and the host network and see the host's files as their user may, and files: cannot be placed (apt-get install bubblewrap)";
      return;
    }
    if (options.isolation === "netns" && !canUseNetworkNamespaces()) {
      this.isolation = "none";
      this.fallbackNote =
        "network namespaces need root (CAP_NET_ADMIN); tasks share the host network and {{host:...}} names a loopback address";
    } else {
      this.isolation = options.isolation;
      if (options.isolation === "none") this.fallbackNote = "tasks share the host network; {{host:...}} names a loopback address";
    }
    if (!this.privileged) {
      this.fallbackNote = `${this.fallbackNote ?? ""}${this.fallbackNote ? "; " : ""}not root: sandboxes use a user namespace, where the system allows one`;
      const refusal = nameServerRefusal();
      if (refusal) this.fallbackNote += `; ${refusal}`;
    }
  }

  describe(): string {
    const isolation = !this.sandboxed
      ? "none (plain processes: bubblewrap is not installed)"
      : this.isolation === "netns"
        ? "netns (own network, PID and mount namespaces per task)"
        : "none (host network; own PID and mount namespaces per task)";
    const builder = this.builder === "troupe" ? ", sandboxes: troupe-spawner" : this.builder === "bwrap" ? ", sandboxes: bubblewrap" : "";
    return `runtime: host, isolation: ${isolation}${builder}`;
  }

  notices(): string[] {
    const out: string[] = [];
    if (this.fallbackNote) out.push(this.fallbackNote);
    if (this.names?.note) out.push(this.names.note);
    if (this.images.size > 0) out.push(imagesStoodInFor("the host runtime", this.images, "this machine's own tools"));
    return out;
  }

  /** Images a plan uses, for the notice. */
  noteImages(images: Iterable<string>): void {
    for (const image of images) this.images.add(image);
  }

  async open(run: RunContext): Promise<void> {
    this.run = run;
    // No sandboxes directory yet: an attempt that needs a directory of its own makes it (and it, recursively);
    // a resumed run's may hold the last process's.
    this.madeSandboxes = run.resumed === true;
    if (this.isolation === "netns") {
      const key = networkKey(this.homeId, run.runId, run.keepTasks === true && this.keepsTasks);
      // The bridges earlier processes opened for this run that no member runs on any more go now, not at the run's
      // end: a server killed again and again would otherwise give a long run one more /24 at every start.
      if (run.resumed)
        await sweepRunNetworks((other) => other !== key, { idleOnly: true }).catch(
          tolerated("could not remove the run's earlier idle bridges (the run's end sweeps again)", { run: run.runId }, "warn"),
        );
      this.network = await openRunNetwork(key);
    }
    const network = this.network;
    this.names = await RunNames.open(
      network
        ? { kind: "netns", gateway: network.gateway, subnet: network.subnet }
        : this.sandboxed
          ? { kind: "shared" }
          : { kind: "none" },
      run.dataDir,
    );
  }

  /** A sandbox resolves the member's name (run-names.ts); a plain process has only the host's resolver: the address. */
  hostName(groupName: string, taskName: string, address: string): string {
    return this.sandboxed ? memberName(groupName, taskName) : address;
  }

  async addresses(taskNames: readonly string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of taskNames) {
      if (this.network) out[name] = this.network.allocate();
      else {
        // Distinct loopback addresses: each resolves and connects, though ports are shared.
        const n = this.nextLoopback++;
        out[name] = `127.1.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
      }
    }
    return out;
  }

  releaseAddresses(addresses: readonly string[]): void {
    if (this.network) for (const address of addresses) this.network.release(address);
    this.names?.release(addresses);
  }

  async prepare(launch: TaskLaunch, options?: PrepareOptions): Promise<PreparedMember> {
    const run = this.run;
    if (!run) throw new Error("the host runtime was not opened");
    if (this.refusal !== undefined) throw new SandboxError(this.refusal);
    const dir = attemptSandboxDir(run.dataDir, launch.taskName, launch.retryId);
    const start = this.startProcess();
    // troupe's own sandbox also makes the output directory and places the
    // hosts file itself, off this event loop (on these disks a mkdir costs 0.5-1.5 ms).
    const own = this.builder === "troupe";
    // As root, the command becomes the pool's task user (root only for a privileged task); otherwise it stays ours.
    const user = !this.privileged ? undefined : launch.privileged ? undefined : this.taskUser;
    if (!own) this.makeDirectories(launch, user);
    if (!this.sandboxed) {
      if (launch.files.length > 0) throw new SandboxError("files: need bubblewrap on the host runtime (apt-get install bubblewrap)");
      // Only without root (as root there is a refusal instead): the task runs as troupe's user.
      const plain = new PlainMember(launch, taskEnvironment(launch), run);
      this.members.add(plain);
      void plain.exited.then(() => this.members.delete(plain));
      return plain;
    }
    // Each attempt has a directory of its own (staged files, network script) when it needs one: new, so no clean-up before.
    if (!own || launch.files.length > 0 || (this.network && !launch.hostNetwork)) {
      mkdirSync(dir, { recursive: true });
      this.madeSandboxes = true;
    }
    // A keeper writes the log itself, without troupe: a task whose output has secrets to mask is not kept (it ends with troupe).
    const keep = run.keepTasks && this.keepsTasks && !hasMaskable(launch.secrets) ? keptStateDir(run.dataDir, launch) : undefined;
    // bwrap through troupe-spawner (not kept) has it as the sandbox's PID 1: a restart in place is possible there too.
    const supervisor = !own && keep === undefined && this.spawner ? (spawnerPath() ?? undefined) : undefined;
    // The group's names are answered before this member (or any other) is released.
    this.names?.serve(launch);
    const names = this.names!.files(launch, dir);
    const plan: SandboxPlan = {
      dir,
      home: this.home,
      hidden: (this.hidden ??= hiddenPaths(this.home)),
      ownSandbox: own,
      ...names,
      stagedFiles: launch.files.map((_, i) => join(dir, `file.${i}`)),
      netns: this.network !== undefined && launch.hostNetwork !== true,
      userNamespace: !this.privileged,
      user,
      env: taskEnvironment(launch, user),
      supervisor,
    };
    launch.files.forEach((file, i) => {
      const staged = plan.stagedFiles[i] as string;
      writeFileSync(staged, file.contents, { mode: file.mode ?? 0o644 });
      // The task's own, to write as it likes: `files:` are the task's (a credential's, to read).
      if (user) chownSync(staged, user.uid, user.gid);
    });
    if (!own) for (const file of [names.hosts, names.resolver]) if (file) writeFileSync(file.file, file.text);
    const spec = sandboxSpec(launch, plan);
    // bwrap's secret variables are read from a file, not its command line; the file goes once bwrap has read it.
    const argsFile = join(dir, "secret.args");
    const bwrap = own ? undefined : bwrapCommand(spec, launch.secrets, argsFile);
    if (bwrap?.hiddenArgs !== undefined) writeFileSync(argsFile, bwrap.hiddenArgs, { mode: 0o600 });
    const configureNetwork =
      this.network && !launch.hostNetwork ? (pid: number) => this.configureNetwork(pid, launch.address, dir) : undefined;
    // Released as it starts where nothing is to be done between the two (a network namespace is configured first).
    const released = options?.releaseWhenReady === true && configureNetwork === undefined;
    const command = own
      ? { argv: launch.argv, directives: spawnerDirectives(spec), keep, released }
      : { argv: bwrap!.argv, keep, supervised: supervisor !== undefined, released };
    const member = new HostMember(launch, command, run, start, configureNetwork);
    this.members.add(member);
    void member.exited.then(() => this.members.delete(member));
    try {
      await member.ready;
    } finally {
      if (bwrap?.hiddenArgs !== undefined) rmSync(argsFile, { force: true });
    }
    return member;
  }

  async reattach(launch: TaskLaunch): Promise<PreparedMember | undefined> {
    if (!this.run) throw new Error("the host runtime was not opened");
    this.reattached = true;
    // Its resolv.conf names the earlier process's name server: names are answered there again.
    await this.names?.adopt(launch);
    const member = KeptMember.attach(launch, keptStateDir(this.run.dataDir, launch));
    if (member) {
      this.members.add(member);
      void member.exited.then(() => this.members.delete(member));
    }
    return member;
  }

  private makeDirectories(launch: TaskLaunch, user: TaskUser | undefined): void {
    // The task writes its output, and the directories it is shown to write elsewhere (checkpoints), as its user.
    for (const dir of [launch.outputDir, ...writableMountSources(launch)]) {
      mkdirSync(dir, { recursive: true });
      if (user) chownSync(dir, user.uid, user.gid);
    }
    const logDir = dirname(launch.logPath);
    if (!this.knownDirs.has(logDir)) {
      mkdirSync(logDir, { recursive: true });
      this.knownDirs.add(logDir);
    }
  }

  /** The troupe-spawner helper when it was built (started on first use), else Node's own spawn. */
  private startProcess(): StartSandboxProcess {
    // The process's helper; should it have died, a new one for the attempts from now on.
    if (this.spawner === undefined || this.spawner?.ended) {
      const path = spawnerPath();
      this.spawner = path ? sharedSpawner(path) : null;
    }
    return this.spawner ? this.spawner.start : startWithNode;
  }

  /** Give the task's network namespace its veth (batched with the group's) and configure it from outside. */
  private async configureNetwork(pid: number, address: string, dir: string): Promise<void> {
    await this.attachSoon(pid, address);
    const script = join(dir, "network.batch");
    writeFileSync(script, this.network!.insideScript(address));
    await execFileAsync("nsenter", [`--net=/proc/${pid}/ns/net`, "sh", "-c", CONFIGURE_TASK_NETNS, "sh", script]);
  }

  /** Attach requests made in the same turn of the event loop go in one `ip -batch`. */
  private attachSoon(pid: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingAttach.push({ pid, address, done: (error) => (error ? reject(error) : resolve()) });
      if (this.pendingAttach.length === 1) setImmediate(() => void this.flushAttach());
    });
  }

  private async flushAttach(): Promise<void> {
    const batch = this.pendingAttach;
    this.pendingAttach = [];
    try {
      await this.network!.attach(batch.map(({ pid, address }) => ({ pid, address })));
      batch.forEach((b) => b.done());
    } catch (error) {
      batch.forEach((b) => b.done(error as Error));
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.members].map((m) => m.stop(0)));
    // The helper is the process's (other runs use it too): this runtime only lets go of it.
    this.spawner = undefined;
    await this.names?.close();
    this.names = undefined;
    if (this.network) await this.network.close();
    this.network = undefined;
    // The bridge of the process that started the re-attached attempts (their veths went with them).
    if ((this.reattached || this.run?.resumed) && this.run && canUseNetworkNamespaces()) {
      const runId = this.run.runId;
      // What is left goes with the next sweep (a run's start, a server's).
      await sweepRunNetworks((key) => !this.isOwnRun(key, runId)).catch(
        tolerated("could not remove the bridges of the run's earlier process", { run: runId }, "warn"),
      );
    }
    // Off the event loop (a server closes a runtime per run).
    if (this.run && this.madeSandboxes) await rm(runSandboxesDir(this.run.dataDir), { recursive: true, force: true });
  }

  /**
   * A run's network belongs to the troupe process that opened it: gone
   * process, stale network. A kept run's (a server's) only when `spare` is
   * given (a server starting) and the run is not in it (not resumed).
   */
  async sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    if (!canUseNetworkNamespaces()) return [];
    return sweepRunNetworks((key, ownerPid) => {
      const { runId, kept, homeId } = runOfNetworkKey(key);
      // Another home's kept run is that home's server's to resume, whoever drove it last.
      if (kept && (spare === undefined || (homeId !== undefined && homeId !== this.homeId))) return true;
      return spare?.has(runId) === true || processAlive(ownerPid);
    });
  }

  /** Whether a network key is run `runId`'s of this home (a key without a home: a troupe from before homes, by run id). */
  private isOwnRun(key: string, runId: string): boolean {
    const of = runOfNetworkKey(key);
    return of.runId === runId && (of.homeId === undefined || of.homeId === this.homeId);
  }
}

/**
 * troupe: as root with the spawner built, troupe-spawner's own sandbox (fast,
 * needs no bubblewrap); bwrap: bubblewrap (unprivileged users, or
 * TROUPE_SANDBOX=bwrap); plain: neither, tasks are plain process groups.
 */
type SandboxBuilder = "troupe" | "bwrap" | "plain";

function sandboxBuilder(privileged: boolean): SandboxBuilder {
  if (privileged && spawnerPath() !== undefined && process.env.TROUPE_SANDBOX !== "bwrap") return "troupe";
  return onPath("bwrap") ? "bwrap" : "plain";
}

/**
 * The run network's key names the home and the run, and marks the networks
 * of kept runs (the server's, resumed by the next one): `[kept.]HOME.RUN`.
 */
const KEPT_KEY = "kept.";

function networkKey(homeId: string, runId: string, kept: boolean): string {
  return `${kept ? KEPT_KEY : ""}${homeId}.${runId}`;
}

function runOfNetworkKey(key: string): { runId: string; kept: boolean; homeId?: string } {
  const kept = key.startsWith(KEPT_KEY);
  const rest = kept ? key.slice(KEPT_KEY.length) : key;
  const homed = /^([0-9a-f]{12})\.(.+)$/.exec(rest);
  return homed ? { runId: homed[2]!, kept, homeId: homed[1]! } : { runId: rest, kept };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
