/**
 * The container runtime: each task attempt runs in its image. Networks:
 * a group of several members gets a network of its own (addresses chosen
 * before any member starts, members reachable by task name); tasks alone in
 * their group share the run's network with their bridge ports isolated, so
 * that they reach the outside but not each other (a network per task costs
 * the engine about 0.2 s each). Without root or with a remote engine, every
 * group gets its own network. Outputs, inputs (read-only) and files are bind
 * mounts at the same paths as on the host; every member waits in troupe-init
 * until the group is released. Everything carries labels with the run and
 * troupe's process token, so a later start removes what a killed troupe left.
 */
import { mkdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { tolerated } from "../../util/log.js";
import { attemptSandboxDir, runSandboxesDir } from "../../model/index.js";
import { isProcessTokenAlive, keptOwnerProcess, keptOwnerToken, processToken } from "../../util/process-identity.js";
import { homeIdentity } from "../home-identity.js";
import { endKeptTasks, keptStateDir } from "../kept-task.js";
import { attachKeptContainer } from "./kept-container.js";
import { TaskStartError, type ExitInfo, type PreparedMember, type RunContext, type Runtime, type TaskLaunch } from "../types.js";
import { builtHelper } from "../native-helpers.js";
import { NETWORK_POOL, SECRET_ENV_FILE, type ContainerBackend, type ContainerSpec } from "./backend.js";
import { prepareBridgePort } from "./bridge-port.js";
import { INIT_IN_CONTAINER, memberEnvironment, memberMounts } from "./member-container.js";
import { ContainerMember } from "./container-member.js";
import { memberName } from "../member-names.js";
import { hostNetworkMember, memberNetwork, type NetworkLease } from "./member-network.js";
import { runKey } from "./run-key.js";
import { GroupNames } from "./group-names.js";
import { RunImages, type PullPolicy } from "./run-images.js";
import { readVerdict, releasedExit, releasedNonce } from "./verdict.js";

export type { PullPolicy } from "./run-images.js";

export interface ContainerRuntimeOptions {
  backend: ContainerBackend;
  pull: PullPolicy;
  /** The backend is a server pool's, used by its other runs too: `close()` leaves it open. */
  sharedBackend?: boolean;
  /** troupe's home: what this runtime makes carries its identity, and a sweep judges only its own kept runs. */
  home?: string;
  /** The size of each container's /dev/shm (the pool's `shm_size`; default DEFAULT_SHM_BYTES). */
  shmBytes?: number;
}

/**
 * A container's /dev/shm unless its pool says otherwise: engines give 64 MB,
 * too little for PyTorch's data loaders (their workers pass batches through
 * it). A tmpfs: it takes memory only as it is filled, counted in the
 * container's memory limit.
 */
export const DEFAULT_SHM_BYTES = 1024 ** 3;

const LABEL_RUN = "troupe.run";
const LABEL_OWNER = "troupe.owner";
/** The home whose run it is (home-identity.ts): several homes may share one engine. */
const LABEL_HOME = "troupe.home";
/** The run's key (runKey): run ids repeat across homes, so they alone do not say whose a container is. */
const LABEL_KEY = "troupe.key";
const SUBNET_PREFIX = NETWORK_POOL.prefix;

export class ContainerRuntime implements Runtime {
  private run: RunContext | undefined;
  /** In every name of the run's containers and networks, after its id (runKey). */
  private key = "";
  /** Labels what this run creates; `kept:` when its containers outlive this process (see process-identity.ts). */
  private owner = processToken();
  /** LABEL_HOME, where the home is known. */
  private readonly homeLabel: Record<string, string>;
  /** Attempts of an earlier process were re-attached: whatever else of this run it left goes at close. */
  private reattached = false;
  private readonly images: RunImages;
  private readonly leases = new Map<string, NetworkLease>(); // address -> network
  private readonly members = new Set<PreparedMember>();
  private sharedNetwork: Promise<{ name: string; prefix: string }> | undefined;
  private sharedNext = 2;
  private readonly freeShared: number[] = [];
  private nextSubnet = 0;
  private nextNetwork = 0;
  /** Networks of this run not removed yet, and removals under way (close() waits for them). */
  private readonly networks = new Set<string>();
  private readonly removals: Array<Promise<void>> = [];
  private readonly init: string;
  /** Isolated bridge ports need the engine's bridges on this machine, and root. */
  private readonly isolatePorts: boolean;
  /** Who answers a group's names by DNS, and that they do before its release (group-names.ts). */
  private readonly names: GroupNames;

  constructor(private readonly options: ContainerRuntimeOptions) {
    const init = builtHelper("troupe-init");
    if (!init) throw new Error("troupe-init was not built (it needs a C compiler with a static libc: `npm run build`)");
    this.init = init;
    this.homeLabel = options.home === undefined ? {} : { [LABEL_HOME]: homeIdentity(options.home) };
    this.images = new RunImages(options.backend, options.pull);
    this.isolatePorts = options.backend.local && process.getuid?.() === 0;
    this.names = new GroupNames(options.backend);
  }

  private get backend(): ContainerBackend {
    return this.options.backend;
  }

  describe(): string {
    const networks = this.isolatePorts ? "a network per group, single tasks isolated on the run's network" : "a network per group";
    return `runtime: container, engine: ${this.backend.describe()}, ${networks}`;
  }

  notices(): string[] {
    const note = this.names.note();
    return note ? [note] : [];
  }

  async open(run: RunContext): Promise<void> {
    this.run = run;
    this.images.authority = run.registryAuth;
    this.key = runKey(run.dataDir, run.resumed === true);
    if (run.keepTasks && this.keepsTasks) this.owner = keptOwnerToken();
    // The sandboxes directory is made with the first attempt's control directory (recursively).
    // A resumed run's networks that no container is on any more (earlier servers' groups that ended) go now, not at
    // the run's end: a server killed again and again would otherwise give a long run more /24s at every start.
    if (run.resumed) {
      // Unlisted, they go at the run's end (removeLeftovers) or with a later sweep.
      const { networks } = await this.backend
        .owned(LABEL_RUN, () => false)
        .catch((error: unknown) => (tolerated("cannot list the resumed run's networks", { run: run.runId })(error), { networks: [] }));
      for (const network of networks.filter((n) => n.labels[LABEL_RUN] === run.runId)) await this.backend.removeIdleNetwork(network.name);
    }
  }

  async addresses(taskNames: readonly string[]): Promise<Record<string, string>> {
    if (taskNames.length === 1 && this.isolatePorts) {
      const { name, prefix } = await (this.sharedNetwork ??= this.createNetwork());
      const host = this.freeShared.pop() ?? this.sharedNext++;
      if (host > 254) throw new Error("the run's network is full (252 single tasks at once)");
      const address = `${prefix}.${host}`;
      this.leases.set(address, { name, shared: true, names: "none", prefix });
      return { [taskNames[0]!]: address };
    }
    if (taskNames.length > 253) throw new Error(`a group of ${taskNames.length} members does not fit one /24 network`);
    const { name, prefix } = await this.createNetwork(this.names.mode === "engine");
    const out: Record<string, string> = {};
    taskNames.forEach((task, i) => {
      out[task] = `${prefix}.${i + 2}`;
      this.leases.set(out[task]!, { name, shared: false, names: this.names.mode, prefix });
    });
    return out;
  }

  /**
   * A new network on the next free /24 (another run or program may hold some);
   * with `dns`, the engine's name server answers its members' names (a group's
   * network, where the engine serves them; the run's shared one, of single
   * tasks, needs none: each finds itself in its /etc/hosts).
   */
  private async createNetwork(dns = false): Promise<{ name: string; prefix: string }> {
    const run = this.requireRun();
    let name = `${this.namePrefix()}-${this.nextNetwork++}`;
    for (let attempt = 0; ; attempt++) {
      const prefix = `${SUBNET_PREFIX}.${this.nextSubnet++ % 256}`;
      try {
        const labels = { [LABEL_RUN]: run.runId, [LABEL_KEY]: this.key, [LABEL_OWNER]: this.owner, ...this.homeLabel };
        await this.backend.createNetwork(name, `${prefix}.0/24`, `${prefix}.1`, labels, { dns });
        this.networks.add(name);
        return { name, prefix };
      } catch (error) {
        const message = (error as Error).message;
        if (attempt >= 255) throw error;
        // A resumed run's earlier networks keep their names.
        if (/network name .* already used|already exists/i.test(message)) name = `${this.namePrefix()}-${this.nextNetwork++}`;
        else if (!/subnet|overlap|in use|already/i.test(message)) throw error;
      }
    }
  }

  /** The member's DNS name (member-names.ts): its group's network's name server answers it. */
  hostName(groupName: string, taskName: string): string {
    return memberName(groupName, taskName);
  }

  releaseAddresses(addresses: readonly string[]): void {
    const done = new Set<string>();
    for (const address of addresses) {
      const lease = this.leases.get(address);
      this.leases.delete(address);
      if (!lease) continue;
      if (lease.shared) this.freeShared.push(Number(address.split(".")[3]));
      else done.add(lease.name);
    }
    for (const name of done) {
      this.networks.delete(name);
      this.removals.push(this.names.release(name).then(() => this.backend.removeNetwork(name)));
    }
  }

  /** A container's file system is its own: the task's data at OSMO's paths. */
  readonly taskView = { mounts: true, dataPaths: "osmo" } as const;
  /** The engine's host network mode (`--network host`, NetworkMode "host"). */
  readonly hostNetwork = true;

  get keepsTasks(): boolean {
    return this.backend.keepsContainers;
  }

  /**
   * A container a previous troupe process started: followed by the engine
   * (API engines), or through its keeper's record (the podman CLI); stopped
   * by name either way.
   */
  async reattach(launch: TaskLaunch): Promise<PreparedMember | undefined> {
    const run = this.requireRun();
    this.reattached = true;
    const controlDir = this.controlDir(launch);
    const name = this.containerName(launch);
    const kept =
      !this.backend.reattach && attachKeptContainer(this.backend, { launch, keepDir: keptStateDir(run.dataDir, launch), controlDir, name });
    // Released before this process began: troupe-init's verdict, checked.
    const outcome = (code: number): ExitInfo => releasedExit(code, readVerdict(controlDir, releasedNonce(controlDir)));
    const member = this.backend.reattach ? await this.followedByEngine(launch, name, outcome) : kept || undefined;
    if (!member) return undefined;
    this.members.add(member);
    void member.exited.then(() => this.members.delete(member));
    // Its group's names are answered again only while it runs: the gateway of an attempt that has ended may be
    // another run's by now (its network removed, the subnet taken again), whose own name server would find it taken.
    if (!kept || kept.running) await this.names.adopt(launch);
    return member;
  }

  private async followedByEngine(
    launch: TaskLaunch,
    name: string,
    outcome: (code: number) => ExitInfo,
  ): Promise<PreparedMember | undefined> {
    const container = await this.backend.reattach!(name, launch.logPath);
    if (!container) return undefined;
    return {
      launch,
      release: () => undefined,
      exited: container.ended.then((end) => (end.error !== undefined ? { code: end.code, lost: end.error } : outcome(end.code))),
      stop: (graceMs) => (graceMs > 0 ? container.stop(graceMs) : container.kill().then(() => container.ended.then(() => undefined))),
    };
  }

  private controlDir(launch: TaskLaunch): string {
    return attemptSandboxDir(this.requireRun().dataDir, launch.taskName, launch.retryId);
  }

  private containerName(launch: TaskLaunch): string {
    return `${this.namePrefix()}-${launch.taskName}-${launch.retryId}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
  }

  /** `troupe-RUN-KEY`: what every name of the run's containers and networks begins with. */
  private namePrefix(): string {
    return `troupe-${this.requireRun().runId}${this.key ? `-${this.key}` : ""}`;
  }

  async prepare(launch: TaskLaunch): Promise<PreparedMember> {
    const run = this.requireRun();
    await this.ensureImage(launch.image);
    const controlDir = this.controlDir(launch);
    mkdirSync(controlDir, { recursive: true });
    mkdirSync(launch.outputDir, { recursive: true });
    mkdirSync(join(launch.logPath, ".."), { recursive: true });
    // A member on the machine's own network has no lease: its address is the machine's.
    const lease = launch.hostNetwork ? undefined : this.leases.get(launch.address);
    if (!lease && !launch.hostNetwork) throw new Error(`no network for ${launch.address}`);
    const mounts = memberMounts(launch, this.init, controlDir);
    const spec: ContainerSpec = {
      name: this.containerName(launch),
      image: launch.image,
      entrypoint: [INIT_IN_CONTAINER],
      command: launch.argv,
      env: memberEnvironment(launch),
      hostname: launch.taskName,
      labels: { [LABEL_RUN]: run.runId, [LABEL_KEY]: this.key, [LABEL_OWNER]: this.owner, ...this.homeLabel, "troupe.task": launch.key },
      mounts,
      hostDir: controlDir,
      ...(lease ? memberNetwork(launch, lease) : hostNetworkMember(launch)),
      cpus: launch.resources?.cpu || undefined,
      memoryBytes: launch.resources?.memoryBytes || undefined,
      gpuDevices: launch.gpuDevices,
      privileged: launch.privileged === true,
      shmBytes: this.options.shmBytes ?? DEFAULT_SHM_BYTES,
      secrets: launch.secrets,
    };
    const onOutput = run.onOutput;
    const keepDir = run.keepTasks && this.keepsTasks ? keptStateDir(run.dataDir, launch) : undefined;
    const live = onOutput && keepDir === undefined ? (chunk: Buffer) => onOutput(launch, chunk) : undefined;
    const container = this.backend.start(spec, launch.logPath, live, keepDir);
    const member = new ContainerMember(launch, container, controlDir);
    this.members.add(member);
    void member.exited.then(() => this.members.delete(member));
    try {
      const peer = await member.ready;
      // The engine has read it: the secrets need not lie on disk for the container's life.
      rmSync(join(controlDir, SECRET_ENV_FILE), { force: true });
      if (lease) {
        if (this.isolatePorts) await prepareBridgePort(peer, lease.shared);
        await this.names.ready(lease, launch);
      }
    } catch (error) {
      await member.stop(0);
      throw new TaskStartError((error as Error).message, "FAILED_START_ERROR");
    }
    return member;
  }

  /** The workflow's images: whether each is present is asked now, alongside the run's start and its first network. */
  noteImages(images: Iterable<string>): void {
    this.images.note(images);
  }

  /** Checked, and pulled as the pull policy says, once per image and run (see run-images.ts). */
  ensureImage(image: string): Promise<void> {
    return this.images.ensure(image);
  }

  async close(): Promise<void> {
    this.images.close();
    await Promise.all([...this.members].map((m) => m.stop(0)));
    await this.names.close();
    // Every container removes itself as it ends (or is removed when it ended badly); the networks are known.
    await Promise.all([...this.removals, ...[...this.networks].map((name) => this.backend.removeNetwork(name))]);
    if ((this.reattached || this.run?.resumed) && this.run) {
      // Earlier processes' attempts that no member here stands for (a group restarted while it was being prepared
      // leaves its last attempt waiting at its barrier): ended first, so that no `podman run` of theirs still
      // creating its container makes one after the listing below.
      if (this.run.keepTasks) await endKeptTasks(this.run.dataDir);
      await this.removeLeftovers(this.run.runId, this.key);
    }
    if (this.run) await rm(runSandboxesDir(this.run.dataDir), { recursive: true, force: true });
    if (!this.options.sharedBackend) await this.backend.close();
  }

  /** What the process that re-attached attempts of this run had left of it: containers still waiting at a barrier, networks. */
  private async removeLeftovers(runId: string, key: string): Promise<void> {
    // Unlisted, they go with a later sweep (a server's start, the next run's).
    const { containers, networks } = await this.backend
      .owned(LABEL_RUN)
      .catch(
        (error: unknown) => (
          tolerated("cannot list what the run's earlier process left", { run: runId }, "warn")(error),
          { containers: [], networks: [] }
        ),
      );
    // Another home's run may have the same id: only this one's (its key).
    const ours = (labels: Record<string, string>) => labels[LABEL_RUN] === runId && (labels[LABEL_KEY] ?? "") === key;
    for (const container of containers.filter((c) => ours(c.labels))) await this.backend.removeContainer(container.id);
    for (const network of networks.filter((n) => ours(n.labels))) await this.backend.removeNetwork(network.name);
  }

  /**
   * Containers and networks of troupe processes that are gone. Those of kept
   * runs (owner `kept:...`) only when `spare` is given (a server starting,
   * which resumed the runs in `spare`): a kept run is another server's to resume.
   */
  async sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    const stale = (labels: Record<string, string>) => {
      const owner = labels[LABEL_OWNER];
      const run = labels[LABEL_RUN];
      if (owner === undefined || owner === this.owner) return false;
      const kept = keptOwnerProcess(owner);
      if (kept === undefined) return !isProcessTokenAlive(owner);
      // Another home's kept run is that home's server's to resume, whoever drove it last.
      const home = labels[LABEL_HOME];
      if (home !== undefined && home !== this.homeLabel[LABEL_HOME]) return false;
      return spare !== undefined && !isProcessTokenAlive(kept) && !(run !== undefined && spare.has(run));
    };
    // Listed before the networks: a rule whose network that listing lacks was made for a network that is gone
    // since (its process killed between the two removals, say), not for one made after the listing.
    // Unlisted, rules whose network is gone stay for the next sweep: harmless meanwhile (they name no bridge in use).
    const rules = (await this.backend.isolationRules?.().catch(tolerated("cannot list troupe's isolation rules", {}, "warn"))) ?? [];
    // A container left behind keeps its network (made before it, removed after it, with it when forced): without
    // a network left behind there is no container to look for either, and the engine is asked one thing, not two.
    const { containers, networks } = await this.backend.owned(LABEL_OWNER, (network) => stale(network.labels));
    const removed: string[] = [];
    for (const container of containers.filter((c) => stale(c.labels))) {
      await this.backend.removeContainer(container.id);
      removed.push(`container ${container.id.slice(0, 12)} (run ${container.labels[LABEL_RUN]})`);
    }
    for (const network of networks.filter((n) => stale(n.labels))) {
      await this.backend.removeNetwork(network.name);
      removed.push(`network ${network.name}`);
    }
    // Every network of troupe's carries LABEL_OWNER: a rule naming none of them is for a network that is gone.
    const orphans = rules.filter((r) => !networks.some((n) => n.name === r.network));
    await this.backend.removeIsolationRules?.(orphans);
    removed.push(...orphans.map((r) => `isolation rule of the gone network ${r.network}`));
    return removed;
  }

  private requireRun(): RunContext {
    if (!this.run) throw new Error("the container runtime was not opened");
    return this.run;
  }
}
