/**
 * A Slurm cluster as the port's pool backend. The cluster places groups
 * (each one batch job: slurm-group.ts); members see the cluster's shared
 * file system, where troupe keeps, per run, the helpers' members files,
 * tokens and exit statuses, and the member helper itself (troupe-slurm-helper,
 * or member-helper.mjs for containers and where it was not built); tasks outlive
 * troupe (their steps are the batch script's). A session listens for its
 * helpers on an address of this (the login) node that the nodes reach.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type {
  GroupHandle,
  GroupListener,
  GroupRef,
  MemberOutcome,
  PoolBackend,
  PoolCapabilities,
  RunContext,
  RunSession,
} from "../../port/index.js";
import { discardTree, emptyTrash, moveToTrash } from "../../util/discard-tree.js";
import { tolerated } from "../../util/log.js";
import { isProcessTokenAlive, processToken } from "../../util/process-identity.js";
import { homeIdentity } from "../home-identity.js";
import { allocation, batchScript, type JobRequest, type MemberShape, type Spread } from "./batch-script.js";
import { DEFAULT_TASK_USER, hiddenPaths, type TaskUser } from "../host/sandbox.js";
import { imagesStoodInFor } from "../host/task-environment.js";
import type { TaskLaunch } from "../types.js";
import { HelperListener, type Hello } from "./helper-listener.js";
import { jobOfShapes } from "./placement.js";
import { stageNodeSandbox, type NodeSandboxSite } from "./node-sandbox.js";
import { controlDirOf, stageNodeContainer, stagePullAuth, type NodeContainerSite } from "./node-container.js";
import { newRelease, readVerdict, releasedExit, releasedNonce, stoppedOf, verdictOf } from "../container/verdict.js";
import { SharedCopies } from "./shared-copies.js";
import { JobPoller } from "./job-poller.js";
import { allocate, cancelJobs, jobsWithComment, submitJob, type SlurmNode } from "./slurm-commands.js";
import { SlurmGroup, type GroupSite } from "./slurm-group.js";

export interface SlurmSettings {
  /** The environment Slurm's commands run with (SLURM_CONF, for a cluster of its own). */
  env: NodeJS.ProcessEnv;
  /** A directory of the cluster's shared file system: the same path on every node and here. */
  sharedDir: string;
  /** This node's address that the nodes reach: where the helpers connect. */
  listenAddress: string;
  partition?: string;
  account?: string;
  qos?: string;
  spread: Spread;
  /** troupe's home (its identity marks the jobs and directories of its runs). */
  home: string;
  /** The partition's nodes, as sinfo said when the pool was made. */
  nodes: readonly SlurmNode[];
  /** Node.js on the nodes (default: this one's path, which a shared installation has on every node). */
  nodePath?: string;
  /** How long the helper of a run that does not keep its tasks waits for a troupe that went away (default 15 s). */
  orphanMs?: number;
  /** Who tasks run as when jobs run as root (default nobody:nogroup). */
  taskUser?: TaskUser;
  /** The images the workflow names, which the nodes' host sandbox stands in for (for the notice). */
  images?: Iterable<string>;
  /**
   * troupe-slurm-helper, the member helper in C, for members in troupe's host sandbox (default: the one `npm run
   * build` made, if it could; false: none, so the Node.js helper runs them).
   */
  nativeHelper?: string | false;
  /** The nodes have podman: each member runs in a container of its image there (node-container.ts), not in troupe's host sandbox. */
  nodeEngine?: "podman";
  /** Every group a batch job, also where its tasks end with troupe (else an interactive allocation: salloc). */
  batchJobs?: boolean;
}

/** Members in containers on the nodes see OSMO's data paths; in the host sandbox, the shared directory's own. */
function capabilitiesOf(nodeEngine: SlurmSettings["nodeEngine"]): PoolCapabilities {
  const dataPaths = nodeEngine === "podman" ? "osmo" : "host";
  // hostNetwork: every member is on its node's network already (its sandbox and container have none of their own).
  return {
    placement: "cluster",
    sharedFileSystem: true,
    tasksOutliveTroupe: true,
    localLogs: true,
    mounts: true,
    dataPaths,
    hostNetwork: true,
  };
}

/** The fields of a job's comment: troupe;run=R;owner=HOME;pid=TOKEN[;keep=1]. */
function commentFields(comment: string): Record<string, string> {
  return Object.fromEntries(
    comment
      .split(";")
      .slice(1)
      .map((field) => [field.slice(0, field.indexOf("=")), field.slice(field.indexOf("=") + 1)]),
  );
}

export class SlurmPool implements PoolBackend {
  readonly kind = "slurm";
  readonly capabilities: PoolCapabilities;
  private readonly homeId: string;
  private readonly base: string;
  /** Runs with a session open in this process: never swept. */
  private readonly open = new Set<string>();
  private readonly copies: SharedCopies;
  private site: NodeSandboxSite | undefined;

  constructor(private readonly settings: SlurmSettings) {
    this.capabilities = capabilitiesOf(settings.nodeEngine);
    this.homeId = homeIdentity(settings.home);
    this.base = join(settings.sharedDir, `troupe-${this.homeId}`);
    this.copies = new SharedCopies(this.base, settings);
  }

  describe(): string {
    const where = [
      this.settings.partition && `partition ${this.settings.partition}`,
      this.settings.account && `account ${this.settings.account}`,
    ]
      .filter(Boolean)
      .join(", ");
    const members = this.settings.spread === "nodes" ? "on distinct nodes" : "placed by Slurm";
    const runs = this.settings.nodeEngine === "podman" ? "in podman containers" : "in troupe's host sandbox";
    return `runtime: slurm (${this.settings.nodes.length} nodes${where ? `, ${where}` : ""}; members ${members}, ${runs})`;
  }

  notices(): string[] {
    const images = [...(this.settings.images ?? [])];
    return [
      ...(this.settings.nodeEngine === "podman"
        ? ["on Slurm, each task runs in a podman container of its image on its node (pulled there when missing), on the node's network"]
        : images.length > 0
          ? [
              imagesStoodInFor(
                `troupe's host sandbox on each Slurm node (${this.buildsOwnSandbox() ? "troupe's own, as root" : "bubblewrap"})`,
                images,
                "the nodes' own tools",
              ),
            ]
          : []),
      ...(this.settings.nodeEngine !== "podman" && !this.copies.memberHelperIsNative()
        ? [
            `troupe-slurm-helper was not built (it needs a C compiler and libjansson-dev at \`npm run build\`): each Slurm member runs troupe's Node.js helper, so every node needs Node.js at ${this.settings.nodePath ?? process.execPath}`,
          ]
        : []),
      `the nodes must see troupe's home (${this.settings.home}) at the same path: tasks' outputs, inputs and logs are there`,
    ];
  }

  async openSession(run: RunContext): Promise<RunSession> {
    const runDir = this.runDir(run.runId);
    mkdirSync(join(runDir, "jobs"), { recursive: true });
    const tokenFile = join(runDir, "token");
    // A resumed run's helpers know its token already.
    if (!existsSync(tokenFile)) writeFileSync(tokenFile, randomBytes(18).toString("hex"), { mode: 0o600 });
    const token = readFileSync(tokenFile, "utf8").trim();
    if (run.keepTasks) writeFileSync(join(runDir, "keep"), "");
    const listener = await HelperListener.open(this.settings.listenAddress, token);
    // Written whole (a helper reads it to reconnect at any time).
    writeFileSync(join(runDir, "listener.tmp"), listener.address);
    renameSync(join(runDir, "listener.tmp"), join(runDir, "listener"));
    this.open.add(run.runId);
    const container: NodeContainerSite | undefined =
      this.settings.nodeEngine === "podman"
        ? {
            init: this.copies.initPath(),
            prefix: `troupe-${this.homeId}-${run.runId}`,
            labels: { "troupe.run": run.runId, "troupe.home": this.homeId },
          }
        : undefined;
    return new SlurmSession(
      this.settings,
      run,
      runDir,
      listener,
      this.copies.memberHelper(),
      this.comment(run),
      this.sandboxSite(),
      container,
      () => this.open.delete(run.runId),
      this.trash,
    );
  }

  /**
   * What the members' sandboxes share: troupe's home and this pool's directory (tokens, the listener's address)
   * hidden. Asked first by a session, once the pool's directory exists: only what exists is hidden.
   */
  private sandboxSite(): NodeSandboxSite {
    return (this.site ??= {
      home: this.settings.home,
      hidden: hiddenPaths(this.settings.home, this.base),
      root: process.getuid?.() === 0,
      ownSandbox: this.buildsOwnSandbox(),
      taskUser: this.settings.taskUser ?? DEFAULT_TASK_USER,
    });
  }

  /** troupe-slurm-helper builds troupe's own sandbox as root (no user namespace needed); bwrap does otherwise. */
  private buildsOwnSandbox(): boolean {
    return process.getuid?.() === 0 && this.copies.memberHelperIsNative();
  }

  private comment(run: RunContext): string {
    return `troupe;run=${run.runId};owner=${this.homeId};pid=${processToken()}${run.keepTasks ? ";keep=1" : ""}`;
  }

  /**
   * Cancels the jobs of this home's runs whose troupe is gone (its process
   * token dead) but for the runs in `spare` and those open here. Runs that
   * keep their tasks (a server's) are a resuming server's to keep or sweep:
   * a sweep without `spare` leaves them.
   */
  async sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    const jobs = await jobsWithComment(this.settings.env, userInfo().username, `troupe;run=`);
    const doomed = jobs.filter((job) => {
      const fields = commentFields(job.comment);
      const run = fields.run ?? "";
      if (fields.owner !== this.homeId || this.open.has(run) || spare?.has(run)) return false;
      if (fields.keep === "1" && spare === undefined) return false;
      return !fields.pid || !isProcessTokenAlive(fields.pid);
    });
    await cancelJobs(
      this.settings.env,
      doomed.map((job) => job.id),
    );
    const runs = new Set(doomed.map((job) => commentFields(job.comment).run ?? ""));
    // Their directories join the trash, removed with what is there in one background `rm`.
    for (const run of runs) this.trashRunDir(run);
    emptyTrash(this.trash);
    return doomed.map((job) => `slurm job ${job.id} (${job.name})`);
  }

  private trashRunDir(run: string): void {
    const dir = this.runDir(run);
    if (run && existsSync(dir) && !existsSync(join(dir, "keep"))) moveToTrash(dir, this.trash);
  }

  /** Where run directories go to be removed in the background (discard-tree.ts): beside them, on the same file system. */
  private get trash(): string {
    return join(this.base, "trash");
  }

  /** Where run `runId`'s files are on the shared file system (while a session of it is open, or a dead one left them). */
  runDir(runId: string): string {
    return join(this.base, "runs", runId);
  }
}

class SlurmSession implements RunSession, GroupSite {
  readonly env: NodeJS.ProcessEnv;
  readonly poller: JobPoller;
  readonly orphanMs: number;
  private readonly groups: SlurmGroup[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: SlurmSettings,
    readonly run: RunContext,
    private readonly runDir: string,
    readonly listener: HelperListener,
    /** The member helper's command on the nodes (SharedCopies.memberHelper). */
    private readonly helper: readonly string[],
    private readonly comment: string,
    private readonly sandboxSite: NodeSandboxSite,
    /** Where the nodes run podman: what the members' containers share. */
    private readonly container: NodeContainerSite | undefined,
    private readonly onClose: () => void,
    /** Where its directory goes once the run is over (SlurmPool.trash). */
    private readonly trash: string,
  ) {
    this.env = settings.env;
    this.poller = new JobPoller(settings.env);
    this.orphanMs = settings.orphanMs ?? 15_000;
  }

  openGroup(group: GroupRef, listener: GroupListener, id?: string): GroupHandle {
    const handle = new SlurmGroup(this, group, listener, id ?? `${this.run.runId}/${group.name}`);
    this.groups.push(handle);
    return handle;
  }

  memberLaunch(launch: TaskLaunch, hello: Hello, dir: string): object {
    const place = { node: hello.node, gpuEnv: hello.gpuEnv };
    if (this.container) {
      const container = stageNodeContainer(launch, place, dir, this.container);
      // The run owner's registry login for the image, if any: an authfile for the helper's pull on the node.
      const auth = this.run.registryAuth?.(launch.image);
      return { container: auth ? { ...container, authFile: stagePullAuth(dir, auth) } : container };
    }
    return stageNodeSandbox(launch, place, dir, this.sandboxSite);
  }

  release(dir: string): { go?: string; restartKey?: string } {
    // troupe-init's "go", written by the helper on the node (its nonce kept here, beside the control directory).
    if (!this.container) return {};
    const { go, restartKey } = newRelease(controlDirOf(dir));
    return { go, restartKey };
  }

  get restartsInPlace(): boolean {
    // troupe-init keeps a container for the next release; a node's sandbox ends with its command.
    return this.container !== undefined;
  }

  restartStopped(dir: string, stopped: string): boolean {
    return stoppedOf(stopped, releasedNonce(controlDirOf(dir)));
  }

  exitOutcome(dir: string, code: number, verdict?: string): MemberOutcome {
    if (!this.container) return { kind: "exited", code };
    const controlDir = controlDirOf(dir);
    const nonce = releasedNonce(controlDir);
    const exit = releasedExit(code, verdict === undefined ? readVerdict(controlDir, nonce) : verdictOf(verdict, nonce));
    return { kind: "exited", code: exit.code, ...(exit.reason !== undefined && { reason: exit.reason }) };
  }

  memberDir(key: string): string {
    return join(this.runDir, "members", key);
  }

  async submit(name: string, members: ReadonlyArray<{ key: string; dir: string; shape: MemberShape }>): Promise<string> {
    const { spread, nodes, partition } = this.settings;
    const { refusal } = jobOfShapes(
      members.map((m) => m.shape),
      spread,
      nodes,
      partition,
    );
    if (refusal) throw new Error(refusal);
    for (const { dir } of members) mkdirSync(dir, { recursive: true });
    const jobs = join(this.runDir, "jobs");
    const membersFile = join(jobs, `${name}.members`);
    writeFileSync(membersFile, members.map(({ key, dir }) => `${key}\t${dir}\n`).join(""));
    const script = join(jobs, `${name}.sh`);
    const request: JobRequest = {
      name: `troupe-${this.run.runId}-${name.replace(/-\d+$/, "")}`,
      comment: this.comment,
      partition: this.settings.partition,
      account: this.settings.account,
      qos: this.settings.qos,
      spread,
      shapes: members.map((m) => m.shape),
      runDir: this.runDir,
      scriptOutput: join(jobs, `${name}.%j.out`),
      helper: this.helper,
      membersFile,
    };
    let job: string;
    if (this.run.keepTasks || this.settings.batchJobs) {
      // Its steps outlive troupe (a server's restart re-attaches them), or the site wants batch jobs: its script on its first node.
      writeFileSync(script, batchScript(request), { mode: 0o700 });
      job = await submitJob(this.env, [], script);
    } else {
      // Its tasks end with troupe: an interactive allocation, placed at once where a batch job waits for the scheduler.
      const { argv, script: text } = allocation(request, script);
      writeFileSync(script, text, { mode: 0o700 });
      job = await allocate(this.env, argv, join(jobs, `${name}.out`));
    }
    for (const { dir } of members) writeFileSync(join(dir, "job"), job);
    return job;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(this.groups.map((g) => g.close().catch(tolerated("cancelling a group's jobs", { run: this.run.runId }, "warn"))));
      this.poller.close();
      await this.listener.close();
      this.onClose();
      // Not waited for: `troupe run` returns once the record is final, not once the shared file system has let go.
      discardTree(this.runDir, this.trash);
    })();
    return this.closing;
  }
}
