/**
 * The host runtime: each task is a process tree of this machine's own tools,
 * in namespaces of its own when troupe runs as root (PID and mount always;
 * network too with netns isolation), so that stopping it leaves nothing
 * behind and its /tmp and files are its own. Without root it falls back to
 * plain process groups and says so.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "node:net";
import type { ExitInfo, PreparedMember, RunContext, Runtime, TaskLaunch } from "../types.js";
import { canUseNetworkNamespaces, openRunNetwork, sweepRunNetworks, type RunNetwork } from "./network.js";
import { hostsFile, sandboxScript, stagedFile, type SandboxLayout } from "./sandbox-script.js";

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
  private readonly members = new Set<HostMember>();
  private pendingAttach: Array<{ pid: number; address: string; done: (error?: Error) => void }> = [];
  private readonly images = new Set<string>();

  constructor(options: HostRuntimeOptions) {
    if (options.isolation === "netns" && !canUseNetworkNamespaces()) {
      this.isolation = "none";
      this.fallbackNote =
        "network namespaces need root (CAP_NET_ADMIN); tasks share the host network and {{host:...}} is a loopback address";
    } else {
      this.isolation = options.isolation;
      if (options.isolation === "none") this.fallbackNote = "tasks share the host network; {{host:...}} is a loopback address";
    }
    if (!this.privileged) {
      this.fallbackNote = `${this.fallbackNote ?? ""}${this.fallbackNote ? "; " : ""}without root there are no PID or mount namespaces: tasks share /tmp and files: are not supported`;
    }
  }

  describe(): string {
    const isolation =
      this.isolation === "netns"
        ? "netns (own network, PID and mount namespaces per task)"
        : this.privileged
          ? "none (host network; own PID and mount namespaces per task)"
          : "none (plain processes)";
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
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, "files"), { recursive: true });
    mkdirSync(launch.outputDir, { recursive: true });
    mkdirSync(join(launch.logPath, ".."), { recursive: true });
    const layout: SandboxLayout = {
      dir,
      runDir: run.dataDir,
      workdir: launch.outputDir,
      mountNamespace: this.privileged,
      baseEnv: baseEnvironment(),
    };
    if (!this.privileged && launch.files.length > 0) {
      throw new Error("files: need root for the host runtime (a private mount namespace); run as root or use the container runtime");
    }
    launch.files.forEach((file, i) => writeFileSync(stagedFile(layout, i), file.contents));
    writeFileSync(hostsFile(layout), hostsText(launch));
    if (this.network) {
      layout.networkScript = join(dir, "network.batch");
      writeFileSync(layout.networkScript, this.network.insideScript(launch.address));
    }
    const member = new HostMember(launch, layout, this.privileged, this.network !== undefined, run, (pid) =>
      this.attachSoon(pid, launch.address),
    );
    this.members.add(member);
    void member.exited.then(() => this.members.delete(member));
    await member.ready;
    return member;
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

function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of BASE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}

function hostsText(launch: TaskLaunch): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const [name, address] of Object.entries(launch.hosts)) lines.push(`${address}\t${name}`);
  return lines.join("\n") + "\n";
}

/** One task attempt on the host: its process, its control channel, its log. */
class HostMember implements PreparedMember {
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly control: Socket;
  private setupError: string | undefined;
  private killedByUs = false;
  private released = false;

  constructor(
    readonly launch: TaskLaunch,
    layout: SandboxLayout,
    namespaces: boolean,
    netns: boolean,
    run: RunContext,
    attach: (pid: number) => Promise<void>,
  ) {
    const script = sandboxScript(launch, layout);
    const shell = ["sh", "-c", script, `troupe:${launch.taskName}`, ...launch.argv];
    const command = namespaces
      ? [
          "unshare",
          "--mount",
          "--pid",
          "--fork",
          "--kill-child",
          "--mount-proc",
          "--propagation",
          "private",
          ...(netns ? ["--net"] : []),
          ...shell,
        ]
      : shell;
    this.child = spawn(command[0] as string, command.slice(1), {
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      // Without namespaces, a process group is what can be stopped as a whole.
      detached: !namespaces,
    });
    this.control = this.child.stdio[3] as Socket;
    const log = createWriteStream(launch.logPath);
    const forward = (chunk: Buffer) => {
      log.write(chunk);
      run.onOutput?.(launch, chunk);
    };
    this.child.stdout!.on("data", forward);
    this.child.stderr!.on("data", forward);

    const { child, control } = this;
    const lines = lineReader(control);
    this.ready = (async () => {
      let line = await lines.next();
      if (line === "up") {
        await attach(child.pid as number);
        control.write("net\n");
        line = await lines.next();
      }
      if (line === "ready") return;
      if (line?.startsWith("error ")) this.setupError = line.slice(6);
      throw new Error(this.setupError ?? "the sandbox exited during setup");
    })();
    this.ready.catch(() => this.kill());

    this.exited = new Promise((resolve) => {
      this.child.on("error", (error) => {
        this.setupError = `cannot start: ${error.message}`;
      });
      this.child.on("close", (code, signal) => {
        log.end();
        this.control.destroy();
        if (!this.released || this.setupError) {
          resolve({ code: code ?? 128, startError: this.setupError ?? "the sandbox ended before its command started" });
          return;
        }
        const signalCode = signal ? 128 + (signalNumbers[signal] ?? 0) : undefined;
        resolve({ code: signalCode ?? (this.killedByUs && code === 1 ? 137 : (code ?? 0)) });
      });
    });
  }

  release(): void {
    this.released = true;
    this.control.write("go\n");
  }

  async stop(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = this.exited.then(() => undefined);
    if (graceMs > 0 && this.released) {
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.kill(), graceMs);
      await done;
      clearTimeout(timer);
      return;
    }
    this.kill();
    await done;
  }

  private signal(signal: NodeJS.Signals): void {
    const target = this.initPid() ?? this.child.pid;
    if (target === undefined) return;
    try {
      // Without namespaces the task is a process group (negative pid).
      process.kill(this.initPid() === undefined ? -target : target, signal);
    } catch {
      // Already gone.
    }
  }

  private kill(): void {
    this.killedByUs = true;
    this.signal("SIGKILL");
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** PID (outside) of the sandbox script, which is PID 1 of the task's PID namespace. */
  private initPid(): number | undefined {
    const pid = this.child.pid;
    if (pid === undefined || this.child.spawnargs[0] !== "unshare") return undefined;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      const first = Number(children.split(" ")[0]);
      return Number.isInteger(first) && first > 0 ? first : undefined;
    } catch {
      return undefined;
    }
  }
}

const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGPIPE: 13,
  SIGABRT: 6,
  SIGSEGV: 11,
};

/** Lines from a socket, one at a time; undefined at the end. */
function lineReader(socket: Socket): { next(): Promise<string | undefined> } {
  const queue: string[] = [];
  const waiters: Array<(line: string | undefined) => void> = [];
  let buffer = "";
  let ended = false;
  socket.setEncoding("utf8");
  socket.on("data", (data: string) => {
    buffer += data;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else queue.push(line);
    }
  });
  const end = () => {
    ended = true;
    for (const waiter of waiters.splice(0)) waiter(undefined);
  };
  socket.on("end", end);
  socket.on("close", end);
  socket.on("error", end);
  return {
    next: () => {
      const line = queue.shift();
      if (line !== undefined || ended) return Promise.resolve(line);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
