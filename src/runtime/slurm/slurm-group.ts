/**
 * A group on Slurm (the port's GroupHandle): each `place` is one batch job
 * of the members asked (a new group's, or a retry's fresh attempts), whose
 * helpers connect back and are the members' events: hello is `placed` (the
 * connection's address is the member's), ready, exit. What the helpers
 * cannot say (a job cancelled, its node lost, a restart of troupe between)
 * comes from the exit files on the shared file system and Slurm's state.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import type {
  GroupHandle,
  GroupListener,
  GroupRef,
  MemberOutcome,
  MemberRef,
  PrepareOptions,
  RunContext,
  StartTimes,
  TaskLaunch,
} from "../../port/index.js";
import { tolerated } from "../../util/log.js";
import { followLog } from "../follow-log.js";
import { shapeOf, type MemberShape } from "./batch-script.js";
import type { Hello, HelperLink, HelperListener, HelperMessage } from "./helper-listener.js";
import { jobEnded, neverStarts, outcomeOfJob } from "./job-outcome.js";
import type { JobPoller } from "./job-poller.js";
import { cancelJobs, jobStates, SlurmCommandError, type JobLine } from "./slurm-commands.js";

/** What a group needs of its session. */
export interface GroupSite {
  readonly env: NodeJS.ProcessEnv;
  readonly run: RunContext;
  readonly listener: HelperListener;
  readonly poller: JobPoller;
  /** A member's directory on the shared file system (its job id, its exit status). */
  memberDir(key: string): string;
  /** Submits one job for these members (task i of its step is member i); its id. */
  submit(group: string, members: ReadonlyArray<{ key: string; dir: string; shape: MemberShape }>): Promise<string>;
  /** How long a helper of a run whose tasks must not outlive troupe waits for troupe to come back. */
  readonly orphanMs: number;
  /**
   * Stages what the member runs in (its host sandbox, node-sandbox.ts, or its container, node-container.ts) in its
   * directory, and returns it as its helper's launch says it; throws when it cannot be built.
   */
  memberLaunch(launch: TaskLaunch, hello: Hello, dir: string): object;
  /** A release's "go" for the helper (a container's: troupe-init's nonce and restart key) and its restart key. */
  release(dir: string): { go?: string; restartKey?: string };
  /** Whether members restart in place (a container's troupe-init keeps it for the next release). */
  readonly restartsInPlace: boolean;
  /** Whether troupe-init's `stopped` (as the helper read it) is its word for the member's current release. */
  restartStopped(dir: string, stopped: string): boolean;
  /** What the member's exit code means (a container's: troupe-init's verdict, `verdict` as its helper read it, checked). */
  exitOutcome(dir: string, code: number, verdict?: string): MemberOutcome;
}

interface SlurmMember {
  key: string;
  dir: string;
  job?: string;
  link?: HelperLink;
  placed: boolean;
  launch?: TaskLaunch;
  ready: boolean;
  released: boolean;
  stopped: boolean;
  /** Slurm signalled its step: how it ended is the job's state, once Slurm has ended the job. */
  signalled?: { code?: number };
  reported: boolean;
  ended: Promise<void>;
  /** Once the live view has had the whole log (while its follower runs): the member's end is said after it. */
  drained?: Promise<void>;
  end: () => void;
  /** Waiting for the command to start (release). */
  starting?: { resolve: (startedAt?: number) => void; reject: (error: Error) => void };
  /**
   * Started as its sandbox came up, without waiting for a release (a group of one: PrepareOptions.releaseWhenReady;
   * host sandboxes only: troupe-slurm-helper does so, the Node.js helper waits for the release as before), and
   * when, by its node's clock, once it says so.
   */
  releaseWhenReady?: boolean;
  startedAt?: number;
  /** The current release's key for a restart in place (troupe-init's). */
  restartKey?: string;
  /** A restart in place asked: settled true once troupe-init has stopped the command, false if the member ends. */
  restarting?: (stopped: boolean) => void;
}

/** How long a member's end waits for the live view to have its log's last lines. */
const DRAIN_LIMIT_MS = 5_000;

export class SlurmGroup implements GroupHandle {
  private readonly members = new Map<string, SlurmMember>();
  /** Each job's members, and how to stop watching it. */
  private readonly jobs = new Map<string, { keys: string[]; unwatch: () => void }>();
  private closed = false;
  private batch = 0;

  constructor(
    private readonly site: GroupSite,
    private readonly group: GroupRef,
    private readonly listener: GroupListener,
    readonly id: string,
  ) {}

  place(refs: readonly MemberRef[]): void {
    const fresh = refs.map((ref) => this.member(ref.key));
    const members = refs.map((ref, i) => ({ key: ref.key, dir: fresh[i]!.dir, shape: shapeOf(ref.resources) }));
    this.batch++;
    this.site.submit(`${this.group.name}-${this.batch}`, members).then(
      (job) => this.submitted(job, fresh),
      (error: Error) => {
        const message = error instanceof SlurmCommandError ? `Slurm refused the group's job: ${error.message}` : error.message;
        for (const member of fresh) this.report(member, { kind: "start-failed", message });
      },
    );
  }

  prepare(launch: TaskLaunch, options?: PrepareOptions): void {
    const member = this.member(launch.key);
    member.launch = launch;
    // A container's release carries troupe-init's nonce, made at the release: those wait for it.
    member.releaseWhenReady = options?.releaseWhenReady === true && !this.site.restartsInPlace;
    if (member.link && !member.stopped) this.sendLaunch(member, member.link);
  }

  async release(keys: readonly string[]): Promise<StartTimes> {
    const starts = keys.map((key) => {
      const member = this.members.get(key);
      // Started by itself (releaseWhenReady), ended since or not: this release changes nothing.
      if (member?.startedAt !== undefined) return Promise.resolve(member.startedAt);
      if (!member || member.reported) return Promise.reject(new Error(`${key} has ended`));
      if (!member.link || !member.ready)
        return Promise.reject(new Error(`${key} is not waiting at the barrier (its helper is not connected)`));
      member.released = true;
      const started = new Promise<number | undefined>((resolve, reject) => (member.starting = { resolve, reject }));
      this.follow(member);
      const { go, restartKey } = this.site.release(member.dir);
      member.restartKey = restartKey;
      member.link.send({ t: "go", go });
      return started;
    });
    const times = await Promise.all(starts);
    return new Map(keys.flatMap((key, i) => (times[i] === undefined ? [] : [[key, times[i]]])));
  }

  async stop(key: string, graceMs: number): Promise<void> {
    const member = this.members.get(key);
    if (!member || member.reported) return;
    member.stopped = true;
    if (member.link) {
      member.link.send({ t: "stop", graceMs });
    } else if (!member.released) {
      // Not on a node yet (the job pending, or not even submitted): it ends now; its helper, if it comes, is told to stop.
      this.report(member, { kind: "start-failed", message: "stopped before it was placed" });
      return;
    } else if (member.job && this.jobs.get(member.job)?.keys.every((k) => this.members.get(k)!.stopped || this.members.get(k)!.reported)) {
      // Running, its helper away (troupe restarted and it has not connected again): the job goes as a whole.
      await cancelJobs(this.site.env, [member.job]);
    }
    await member.ended;
    // Its end is said once the live view has its last lines (report): stopped means said.
    await member.drained;
  }

  /** troupe-init stops the command, keeps the container (its files, address) and waits for the next release. */
  async restart(key: string, graceMs: number): Promise<boolean> {
    const member = this.members.get(key);
    if (!member || member.reported || !member.released || !member.link || !member.restartKey || member.restarting) return false;
    const stopped = new Promise<boolean>((resolve) => (member.restarting = resolve));
    member.link.send({ t: "restart", key: member.restartKey, graceMs });
    return stopped;
  }

  canRestart(): boolean {
    // A node's sandbox ends with its command (its step with it): a rescheduled sibling gets a fresh attempt (a new job).
    return this.site.restartsInPlace;
  }

  async reattach(launch: TaskLaunch): Promise<boolean> {
    const member = this.member(launch.key);
    const jobFile = `${member.dir}/job`;
    if (!existsSync(jobFile)) return false;
    const job = readFileSync(jobFile, "utf8").trim();
    Object.assign(member, { job, launch, placed: true, ready: true, released: true });
    const status = this.exitStatus(member);
    if (status !== undefined) {
      setImmediate(() => this.report(member, this.site.exitOutcome(member.dir, status)));
      return true;
    }
    const line = (await jobStates(this.site.env, [job])).get(job);
    if (!line) return false;
    this.watchJob(job, [member.key]);
    if (jobEnded(line.state)) setImmediate(() => this.jobSeen(job, line));
    return true;
  }

  logs(key: string): Readable {
    const member = this.members.get(key);
    if (!member?.launch) throw new Error(`no attempt ${key} has been prepared in group ${this.group.name}`);
    return followLog(member.launch.logPath, member.ended);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const live = [...this.jobs.entries()].filter(([, { keys }]) => keys.some((k) => !this.members.get(k)!.reported)).map(([job]) => job);
    for (const { unwatch } of this.jobs.values()) unwatch();
    for (const key of this.members.keys()) this.site.listener.unroute(key);
    await cancelJobs(this.site.env, live);
  }

  // ---- members and their helpers

  private member(key: string): SlurmMember {
    let member = this.members.get(key);
    if (member) return member;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const dir = this.site.memberDir(key);
    member = { key, dir, placed: false, ready: false, released: false, stopped: false, reported: false, ended, end };
    this.members.set(key, member);
    const m = member;
    this.site.listener.route(key, {
      connected: (link) => this.connected(m, link),
      message: (_link, message) => this.message(m, message),
      disconnected: (link) => {
        if (m.link !== link) return;
        m.link = undefined;
        m.starting?.reject(new Error(`${key}'s helper went away before its command started`));
        this.site.poller.pollSoon();
      },
    });
    return member;
  }

  private submitted(job: string, members: SlurmMember[]): void {
    for (const member of members) member.job = job;
    this.watchJob(
      job,
      members.map((m) => m.key),
    );
    // Stopped while it was being submitted: nothing of it is to run.
    if (members.every((m) => m.reported)) void this.cancelQuietly(job);
  }

  private connected(member: SlurmMember, link: HelperLink): void {
    if (member.reported) return link.send({ t: "stop", graceMs: 0 });
    member.link = link;
    // A helper whose command already runs connects again after a restart of troupe: its placement is known.
    if (!member.placed && !link.hello.running) {
      member.placed = true;
      this.listener.placed(member.key, { address: link.address, hostName: link.address, node: link.hello.node });
    }
    if (member.stopped) link.send({ t: "stop", graceMs: 0 });
    else if (member.launch && !link.hello.running) this.sendLaunch(member, link);
  }

  private sendLaunch(member: SlurmMember, link: HelperLink): void {
    let payload: object;
    try {
      payload = this.site.memberLaunch(member.launch!, link.hello, member.dir);
    } catch (error) {
      // Nothing of it runs: its helper is told to leave, and the member fails saying why (a file it cannot place).
      link.send({ t: "stop", graceMs: 0 });
      return this.report(member, { kind: "start-failed", message: (error as Error).message });
    }
    // Secrets (the task's credentials') to mask in its output, which the helper writes to its log on the node.
    const { logPath, secrets } = member.launch!;
    const releaseWhenReady = member.releaseWhenReady === true;
    link.send({ t: "launch", launch: { ...payload, logPath, secrets, orphanMs: this.site.orphanMs, releaseWhenReady } });
  }

  private message(member: SlurmMember, message: HelperMessage): void {
    if (member.reported) return;
    switch (message.t) {
      case "ready":
        // A stop asked meanwhile: it is never reported ready (its helper ends it).
        if (member.ready || member.stopped) return;
        member.ready = true;
        this.listener.ready(member.key);
        return;
      case "started":
        if (member.starting) return member.starting.resolve(message.at);
        if (member.releaseWhenReady && !member.released) {
          // It released itself: its output is followed from now, as a release's is.
          member.released = true;
          member.startedAt = message.at;
          this.follow(member);
        }
        return;
      case "exit":
        member.starting?.resolve();
        return this.report(member, this.site.exitOutcome(member.dir, message.code, message.verdict));
      case "failed":
        member.starting?.reject(new Error(message.message));
        return this.report(member, { kind: message.image ? "image-pull" : "start-failed", message: message.message });
      case "stopped":
        return this.report(member, { kind: "start-failed", message: "stopped before its command started" });
      case "restarted": {
        // Anything else in its place is the task's (it may write the control directory): the wait goes on.
        const settle = member.restarting;
        if (!settle || !this.site.restartStopped(member.dir, message.stopped)) return;
        Object.assign(member, { released: false, restartKey: undefined, restarting: undefined });
        // Its helper waits for the next "go" again (sent after this, on the same connection).
        member.link?.send({ t: "restarted" });
        settle(true);
        return;
      }
      case "signalled":
        member.signalled = { code: message.code };
        this.site.poller.pollSoon();
        return;
    }
  }

  /** A released member's output, to the run's live sink as it comes. */
  private follow(member: SlurmMember): void {
    const sink = this.site.run.onOutput;
    const launch = member.launch;
    // Followed from its first release to its end: a restart in place goes on in the same log.
    if (!sink || !launch || member.drained) return;
    const stream = followLog(launch.logPath, member.ended);
    stream.on("data", (chunk: Buffer) => sink(launch, chunk));
    stream.on("error", tolerated("following a member's log for the live view", { key: member.key }));
    // The log is a file on the shared file system, read after the helper's word of the end can arrive: its
    // last lines would show after the task's end (or the run's summary).
    member.drained = new Promise<void>((resolve) => stream.once("close", resolve));
  }

  // ---- what Slurm says

  private watchJob(job: string, keys: string[]): void {
    const known = this.jobs.get(job);
    if (known) {
      known.keys.push(...keys);
      return;
    }
    const unwatch = this.site.poller.watch(job, (line) => this.jobSeen(job, line));
    this.jobs.set(job, { keys: [...keys], unwatch });
  }

  private jobSeen(job: string, line: JobLine | undefined): void {
    const entry = this.jobs.get(job);
    if (!entry) return;
    const open = entry.keys.map((k) => this.members.get(k)!).filter((m) => !m.reported);
    const never = line && neverStarts(line);
    if (never) {
      for (const member of open) this.report(member, { kind: "start-failed", message: never });
      return;
    }
    const over = !line || jobEnded(line.state);
    for (const member of open) {
      const status = this.exitStatus(member);
      // An exit file is the member's own word; else, once the job is over, Slurm's.
      if (status !== undefined && !member.link) this.report(member, this.site.exitOutcome(member.dir, status));
      else if (over)
        this.report(
          member,
          status !== undefined ? this.site.exitOutcome(member.dir, status) : outcomeOfJob(job, line, member.stopped, member.signalled),
        );
    }
    if (over) {
      entry.unwatch();
      this.jobs.delete(job);
    }
  }

  private exitStatus(member: SlurmMember): number | undefined {
    try {
      const text = readFileSync(`${member.dir}/exit`, "utf8").trim();
      return /^\d+$/.test(text) ? Number(text) : undefined;
    } catch {
      return undefined; // none written (yet)
    }
  }

  /** Every attempt's end is reported once; a job none of whose members is left goes. */
  private report(member: SlurmMember, outcome: MemberOutcome): void {
    if (member.reported) return;
    member.reported = true;
    member.starting?.reject(new Error(`${member.key} ended before its command started`));
    member.restarting?.(false);
    member.end();
    if (member.drained) {
      // Bounded, should the file system hang.
      let limit: NodeJS.Timeout | undefined;
      member.drained = Promise.race([member.drained, new Promise<void>((resolve) => (limit = setTimeout(resolve, DRAIN_LIMIT_MS)))]);
      void member.drained.then(() => {
        clearTimeout(limit);
        this.listener.exited(member.key, outcome);
      });
    } else this.listener.exited(member.key, outcome);
    // A job none of whose members is left, some never on a node (stopped while it was pending): it goes.
    const job = member.job && this.jobs.get(member.job);
    const members = job ? job.keys.map((k) => this.members.get(k)!) : [];
    if (members.every((m) => m.reported) && members.some((m) => !m.placed)) void this.cancelQuietly(member.job!);
  }

  private async cancelQuietly(job: string): Promise<void> {
    await cancelJobs(this.site.env, [job]).catch(tolerated("cancelling a job none of whose members is left", { job }, "warn"));
  }
}
