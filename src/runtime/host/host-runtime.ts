/**
 * The host runtime: each task is a process tree of this machine's own tools,
 * in namespaces of its own when troupe runs as root (PID and mount always;
 * network too with netns isolation), so that stopping it leaves nothing
 * behind and its /tmp and files are its own. Without root it falls back to
 * a user namespace where the system allows one, and says so.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, createWriteStream, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ExitInfo, PreparedMember, RunContext, Runtime, TaskLaunch } from "../types.js";
import { canUseNetworkNamespaces, openRunNetwork, sweepRunNetworks, type RunNetwork } from "./network.js";
import { PlainMember } from "./plain-member.js";
import { BLOCK_FD, bwrapArguments, hostsText, SandboxError, STATUS_FD, type SandboxPlan } from "./sandbox.js";

const execFileAsync = promisify(execFile);

export type Isolation = "netns" | "none";

export interface HostRuntimeOptions {
  isolation: Isolation;
}

const BASE_ENV_KEYS = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER"];

export class HostRuntime implements Runtime {
  private run: RunContext | undefined;
  private network: RunNetwork | undefined;
  private readonly privileged = process.getuid?.() === 0;
  private readonly isolation: Isolation;
  private readonly fallbackNote: string | undefined;
  private nextLoopback = 1;
  private readonly members = new Set<PreparedMember>();
  private pendingAttach: Array<{ pid: number; address: string; done: (error?: Error) => void }> = [];
  private readonly images = new Set<string>();
  private readonly knownDirs = new Set<string>();
  /** bubblewrap is there: each task gets its sandbox; otherwise plain processes. */
  private readonly sandboxed = onPath("bwrap");

  constructor(options: HostRuntimeOptions) {
    if (!this.sandboxed) {
      this.isolation = "none";
      this.fallbackNote =
        "bubblewrap (bwrap) is not installed: tasks run as plain processes that share /tmp and the host network, and files: cannot be placed (apt-get install bubblewrap)";
      return;
    }
    if (options.isolation === "netns" && !canUseNetworkNamespaces()) {
      this.isolation = "none";
      this.fallbackNote =
        "network namespaces need root (CAP_NET_ADMIN); tasks share the host network and {{host:...}} is a loopback address";
    } else {
      this.isolation = options.isolation;
      if (options.isolation === "none") this.fallbackNote = "tasks share the host network; {{host:...}} is a loopback address";
    }
    if (!this.privileged) {
      this.fallbackNote = `${this.fallbackNote ?? ""}${this.fallbackNote ? "; " : ""}not root: sandboxes use a user namespace, where the system allows one`;
    }
  }

  describe(): string {
    const isolation = !this.sandboxed
      ? "none (plain processes: bubblewrap is not installed)"
      : this.isolation === "netns"
        ? "netns (own network, PID and mount namespaces per task)"
        : "none (host network; own PID and mount namespaces per task)";
    return `runtime: host, isolation: ${isolation}`;
  }

  notices(): string[] {
    const out: string[] = [];
    if (this.fallbackNote) out.push(this.fallbackNote);
    if (this.images.size > 0)
      out.push(`the host runtime stands in for the images ${[...this.images].join(", ")}: commands run with this machine's own tools`);
    return out;
  }

  /** Images a plan uses, for the notice. */
  noteImages(images: Iterable<string>): void {
    for (const image of images) this.images.add(image);
  }

  async open(run: RunContext): Promise<void> {
    this.run = run;
    mkdirSync(join(run.dataDir, "sandboxes"), { recursive: true });
    if (this.isolation === "netns") this.network = await openRunNetwork(run.runId);
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
  }

  async prepare(launch: TaskLaunch): Promise<PreparedMember> {
    const run = this.run;
    if (!run) throw new Error("the host runtime was not opened");
    const dir = join(run.dataDir, "sandboxes", `${launch.taskName}.${launch.retryId}`);
    // Each attempt has directories of its own, so they are new: no clean-up before.
    mkdirSync(dir, { recursive: true });
    mkdirSync(launch.outputDir, { recursive: true });
    const logDir = join(launch.logPath, "..");
    if (!this.knownDirs.has(logDir)) {
      mkdirSync(logDir, { recursive: true });
      this.knownDirs.add(logDir);
    }
    if (!this.sandboxed) {
      if (launch.files.length > 0) throw new SandboxError("files: need bubblewrap on the host runtime (apt-get install bubblewrap)");
      const plain = new PlainMember(launch, { ...baseEnvironment(), ...launch.env }, run);
      this.members.add(plain);
      void plain.exited.then(() => this.members.delete(plain));
      return plain;
    }
    const plan: SandboxPlan = {
      dir,
      runDir: run.dataDir,
      hostsFile: join(dir, "hosts"),
      stagedFiles: launch.files.map((_, i) => join(dir, `file.${i}`)),
      netns: this.network !== undefined,
      userNamespace: !this.privileged,
      env: { ...baseEnvironment(), ...launch.env },
    };
    launch.files.forEach((file, i) => writeFileSync(plan.stagedFiles[i] as string, file.contents));
    writeFileSync(plan.hostsFile, hostsText(launch));
    const args = bwrapArguments(launch, plan);
    const member = new HostMember(launch, args, run, this.network ? (pid) => this.configureNetwork(pid, launch.address, dir) : undefined);
    this.members.add(member);
    void member.exited.then(() => this.members.delete(member));
    await member.ready;
    return member;
  }

  /** Give the task's network namespace its veth (batched with the group's) and configure it from outside. */
  private async configureNetwork(pid: number, address: string, dir: string): Promise<void> {
    await this.attachSoon(pid, address);
    const script = join(dir, "network.batch");
    writeFileSync(script, this.network!.insideScript(address));
    await execFileAsync("nsenter", [`--net=/proc/${pid}/ns/net`, "ip", "-batch", script]);
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
    if (this.network) await this.network.close();
    this.network = undefined;
    if (this.run) rmSync(join(this.run.dataDir, "sandboxes"), { recursive: true, force: true });
  }

  async sweep(): Promise<string[]> {
    if (!canUseNetworkNamespaces()) return [];
    // A run's network belongs to the troupe process that opened it: gone process, stale network.
    return sweepRunNetworks((_key, ownerPid) => ownerPid === undefined || processAlive(ownerPid));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether an executable of that name is on PATH (cheap: no process started). */
function onPath(name: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(join(dir || ".", name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of BASE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}

/** One task attempt on the host: its bwrap process, its status channel, its log. */
class HostMember implements PreparedMember {
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly barrier: Socket;
  /** PID (in troupe's view) of the sandbox's PID 1; the command is its child. */
  private sandboxPid: number | undefined;
  private commandExit: number | undefined;
  private released = false;

  constructor(
    readonly launch: TaskLaunch,
    args: string[],
    run: RunContext,
    configureNetwork: ((pid: number) => Promise<void>) | undefined,
  ) {
    // Without a live view, output goes straight from the task to its log file:
    // complete by construction, and nothing for troupe to copy.
    const direct = run.onOutput === undefined;
    const logFd = direct ? openSync(launch.logPath, "a") : undefined;
    const stdio: Array<"ignore" | "pipe" | number> = ["ignore", logFd ?? "pipe", logFd ?? "pipe"];
    stdio[STATUS_FD] = "pipe";
    stdio[BLOCK_FD] = "pipe";
    try {
      this.child = spawn("bwrap", args, { stdio });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    const status = this.child.stdio[STATUS_FD] as Socket;
    this.barrier = this.child.stdio[BLOCK_FD] as Socket;
    status.on("error", () => undefined);
    this.barrier.on("error", () => undefined);

    const log = direct ? undefined : createWriteStream(launch.logPath);
    if (log) {
      const forward = (chunk: Buffer) => {
        log.write(chunk);
        run.onOutput?.(launch, chunk);
      };
      this.child.stdout!.on("data", forward);
      this.child.stderr!.on("data", forward);
    }

    const started = new Promise<number>((resolve, reject) => {
      jsonLines(status, (message) => {
        if (typeof message["child-pid"] === "number") resolve(message["child-pid"]);
        if (typeof message["exit-code"] === "number") this.commandExit = message["exit-code"];
      });
      this.child.on("close", () => reject(new Error(this.setupFailure())));
      this.child.on("error", (error) =>
        reject(new Error(`cannot start bwrap: ${error.message} (the host runtime needs bubblewrap: apt-get install bubblewrap)`)),
      );
    });
    this.ready = started.then(async (pid) => {
      this.sandboxPid = pid;
      if (configureNetwork) await configureNetwork(pid);
    });
    this.ready.catch(() => this.kill());

    this.exited = new Promise((resolve) => {
      this.child.on("close", (code) => {
        status.destroy();
        this.barrier.destroy();
        const settle = () => {
          if (this.commandExit === undefined) {
            // The command never ran: bwrap itself failed, or we stopped it at the barrier.
            resolve({ code: code ?? 128, startError: this.released ? this.setupFailure() : "stopped before its command started" });
            return;
          }
          resolve({ code: this.commandExit });
        };
        // An attempt has ended only once its log is complete on disk.
        if (log) log.end(settle);
        else settle();
      });
    });
  }

  /** bwrap's own complaint, the last line of the log when the command never ran. */
  private setupFailure(): string {
    let message: string | undefined;
    try {
      message = readFileSync(this.launch.logPath, "utf8").slice(-2000).trim().split("\n").pop();
    } catch {
      message = undefined;
    }
    return message ? `sandbox setup failed: ${message}` : "the sandbox ended before its command started";
  }

  release(): void {
    this.released = true;
    this.barrier.end("go");
  }

  async stop(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = this.exited.then(() => undefined);
    const command = this.commandPid();
    if (graceMs > 0 && this.released && command !== undefined) {
      signal(command, "SIGTERM");
      const timer = setTimeout(() => this.kill(), graceMs);
      await done;
      clearTimeout(timer);
      return;
    }
    this.kill();
    await done;
  }

  /** SIGKILL to the sandbox's PID 1 ends every process of the task's PID namespace. */
  private kill(): void {
    if (this.sandboxPid !== undefined) signal(this.sandboxPid, "SIGKILL");
    signal(this.child.pid, "SIGKILL");
  }

  private commandPid(): number | undefined {
    const pid = this.sandboxPid;
    if (pid === undefined) return undefined;
    try {
      const first = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0]);
      return Number.isInteger(first) && first > 0 ? first : undefined;
    } catch {
      return undefined;
    }
  }
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** bwrap's status channel: one JSON object per line. */
function jsonLines(socket: Socket, onMessage: (message: Record<string, unknown>) => void): void {
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (data: string) => {
    buffer += data;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      try {
        onMessage(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // Not ours to interpret.
      }
    }
  });
}
