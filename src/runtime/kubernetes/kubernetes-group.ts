/**
 * A group on Kubernetes (the port's GroupHandle). `place` creates each member's pod, holding (barrier.ts), and
 * the group's headless Service and gang PodGroup (pod-groups.ts) when it has several members, the pods naming
 * their image's pull Secret (pull-secrets.ts); the session's informer (pod-informer.ts) brings every change of
 * the pods, which are the members' events: unschedulable is `unplaced` with the scheduler's reason, bound with
 * an address is `placed`, the holder
 * running with its launch delivered is `ready`, an ended pod is `exited` (pod-state.ts). `release` is one
 * annotation PATCH per member; `stop` deletes the pod (grace, then force).
 */
import { PassThrough, type Readable } from "node:stream";
import { chmodSync, mkdirSync } from "node:fs";
import { type CoreV1Api, type KubeConfig, type V1Pod, type V1VolumeMount } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { GroupHandle, GroupListener, GroupRef, MemberOutcome, MemberRef, TaskLaunch, TaskMount } from "../../port/index.js";
import { tolerated } from "../../util/log.js";
import { BARRIER_ANNOTATION, DEFAULT_BARRIER_HOLDER, launchSecret, RELEASED } from "./barrier.js";
import { pathInside, missingMounts, type MountSight } from "./data-volume.js";
import { heldPod, type HeldPodSettings } from "./held-pod.js";
import type { InitRef } from "./init-holder.js";
import { joinPodGroup, type PodGroups } from "./pod-groups.js";
import { ANNOTATIONS, memberHostName, podName, serviceName, type Owner } from "./names.js";
import { groupService, TASK_CONTAINER } from "./objects.js";
import { podOutcome, podPlacement, unschedulableReason, waitingProblem } from "./pod-state.js";
import { apiMessage, isStatus, retrying } from "./api-errors.js";
import { readPodLog } from "./pod-log.js";

/** What a group needs of its session. */
export interface KubernetesSite {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly owner: Owner;
  readonly settings: HeldPodSettings;
  readonly clusterDomain: string;
  /** The run's gang PodGroups (none where the pool names no gang scheduler). */
  readonly podGroups: PodGroups;
  /** The name of the image pull Secret of the run owner's login for `image`, made if need be; undefined: none. */
  pullSecret(image: string | undefined): Promise<string | undefined>;
  /** troupe-init's ConfigMap for the pods (made if need be), or undefined where a shell holds them. */
  initHolder(): Promise<InitRef | undefined>;
  /** Pod events of this group's pods, by pod name, until `unwatch`. */
  watch(pod: string, onPod: (pod: V1Pod, gone: boolean) => void): () => void;
}

interface KubernetesMember {
  key: string;
  taskName: string;
  pod: string;
  last?: V1Pod;
  placed: boolean;
  prepared: boolean;
  ready: boolean;
  reported: boolean;
  /** A stop was asked for: it is never `ready` after that (its end follows). */
  stopping?: boolean;
  /** The container's mounts as its pod was made: a launch needing others cannot start in it. */
  podMounts?: V1VolumeMount[];
  /** Why the scheduler has not placed the pod, as last told to the listener. */
  unplaced?: string;
  ended: Promise<void>;
  end: () => void;
  unwatch?: () => void;
}

/** How long the last read of an ended pod's log may take. */
const FINAL_READ_MS = 5_000;
/** How long a force delete waits for the pod to go before the member is given up as lost. */
const FORCE_WAIT_MS = 10_000;

export class KubernetesGroup implements GroupHandle {
  private readonly members = new Map<string, KubernetesMember>();
  private service: Promise<void> | undefined;
  private podGroup: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly site: KubernetesSite,
    private readonly group: GroupRef,
    private readonly listener: GroupListener,
    readonly id: string,
  ) {}

  private get namespace(): string {
    return this.site.settings.namespace;
  }

  place(refs: readonly MemberRef[]): void {
    for (const ref of refs) {
      const member = this.member(ref.key, ref.taskName, ref.retryId);
      void this.create(member, ref);
    }
  }

  private async create(member: KubernetesMember, ref: MemberRef): Promise<void> {
    try {
      if (this.group.members.length > 1) await (this.service ??= this.createService());
      if (this.group.members.length > 1)
        await (this.podGroup ??= this.site.podGroups.create(this.site.owner, this.group.name, this.group.members.length));
      const pullSecret = await this.site.pullSecret(ref.image);
      const init = await this.site.initHolder();
      const body = heldPod(ref, this.group.name, this.site.owner, this.site.settings, init);
      member.podMounts = body.spec!.containers[0]!.volumeMounts ?? [];
      makeMountSources(ref.mounts ?? [], this.site.settings);
      joinPodGroup(body, this.site.settings, this.site.owner, this.group.name, this.group.members.length);
      if (pullSecret) body.spec!.imagePullSecrets = [...(body.spec!.imagePullSecrets ?? []), { name: pullSecret }];
      await retrying(() => this.site.core.createNamespacedPod({ namespace: this.namespace, body })).catch((error: unknown) => {
        // A retried creation that had gone through: the pod (its name is the attempt's) is this one.
        if (!isStatus(error, 409)) throw error;
      });
    } catch (error) {
      const message =
        error instanceof TroupeError || (error instanceof Error && error.message.startsWith("the API server"))
          ? error.message
          : `the API server refused the pod: ${apiMessage(error)}`;
      this.report(member, { kind: "start-failed", message });
    }
  }

  private async createService(): Promise<void> {
    const body = groupService(this.group.name, this.site.owner, this.site.settings);
    await retrying(() => this.site.core.createNamespacedService({ namespace: this.namespace, body })).catch((error: unknown) => {
      // A resumed group's Service is there already.
      if (!isStatus(error, 409)) throw error;
    });
  }

  prepare(launch: TaskLaunch): void {
    const member = this.members.get(launch.key);
    if (!member || member.reported) return;
    let body;
    try {
      const missing = missingMounts(launch.mounts ?? [], this.site.settings, launch.taskName, member.podMounts ?? []);
      if (missing.length > 0)
        throw new Error(
          `task ${launch.taskName} needs ${missing.join(", ")}, which its pod was made without (a pod's volumes are fixed when it is placed, before {{host:...}} is known: a checkpoint path cannot name it on Kubernetes)`,
        );
      const holder = this.site.settings.barrierHolder ?? DEFAULT_BARRIER_HOLDER;
      body = launchSecret(launch, this.site.owner, this.namespace, member.pod, holder);
    } catch (error) {
      this.report(member, { kind: "start-failed", message: (error as Error).message });
      return;
    }
    // Owned by the pod: the garbage collector removes the Secret with it.
    const uid = member.last?.metadata?.uid;
    if (uid) body.metadata!.ownerReferences = [{ apiVersion: "v1", kind: "Pod", name: member.pod, uid }];
    retrying(() => this.site.core.createNamespacedSecret({ namespace: this.namespace, body: body! })).then(
      () => {
        member.prepared = true;
        if (member.last) this.onPod(member, member.last, false);
      },
      (error: unknown) => {
        if (isStatus(error, 409)) {
          member.prepared = true;
          if (member.last) this.onPod(member, member.last, false);
          return;
        }
        this.report(member, { kind: "start-failed", message: `the API server refused the launch's Secret: ${apiMessage(error)}` });
        void this.deletePod(member, 0);
      },
    );
  }

  async release(keys: readonly string[]): Promise<void> {
    const patch = [{ op: "replace", path: `/metadata/annotations/${BARRIER_ANNOTATION.replace("/", "~1")}`, value: RELEASED }];
    await Promise.all(
      keys.map(async (key) => {
        const member = this.members.get(key);
        if (!member || member.reported) throw new Error(`${key} has ended`);
        if (!member.ready) throw new Error(`${key} is not waiting at the barrier`);
        try {
          await retrying(() => this.site.core.patchNamespacedPod({ name: member.pod, namespace: this.namespace, body: patch }));
        } catch (error) {
          throw new Error(`releasing ${key} (pod ${member.pod}): ${apiMessage(error)}`);
        }
      }),
    );
  }

  async stop(key: string, graceMs: number): Promise<void> {
    const member = this.members.get(key);
    if (!member) return;
    if (!member.reported) {
      member.stopping = true;
      if (!(await this.deletePod(member, Math.ceil(graceMs / 1000)))) {
        // Never made (its creation failed or is still under way) or gone unseen: nothing of it runs.
        this.report(member, { kind: "start-failed", message: `pod ${member.pod} was stopped before it ran` });
        return;
      }
      if (await within(member.ended, graceMs + 2_000)) return;
      await this.deletePod(member, 0);
      if (await within(member.ended, FORCE_WAIT_MS)) return;
      this.report(member, { kind: "lost", message: `pod ${member.pod} was still there after a force delete` });
    }
  }

  async restart(): Promise<boolean> {
    return false;
  }

  canRestart(): boolean {
    return false;
  }

  async reattach(launch: TaskLaunch): Promise<boolean> {
    const member = this.member(launch.key, launch.taskName, launch.retryId);
    member.placed = member.prepared = member.ready = true;
    try {
      const pod = await retrying(() => this.site.core.readNamespacedPod({ name: member.pod, namespace: this.namespace }));
      if (pod.metadata?.annotations?.[BARRIER_ANNOTATION] !== RELEASED) return this.forget(member);
      this.onPod(member, pod, false);
      return true;
    } catch (error) {
      if (isStatus(error, 404)) return this.forget(member);
      throw error;
    }
  }

  /**
   * The member's log through the API server, from its start, followed while the pod runs; once the pod has
   * ended, what the follow had not yet given is read once more, so the stream ends complete.
   */
  logs(key: string): Readable {
    const member = this.members.get(key);
    const out = new PassThrough();
    if (!member) {
      out.end();
      return out;
    }
    let received = 0;
    const counter = new PassThrough();
    counter.on("data", (chunk: Buffer) => {
      received += chunk.length;
      out.write(chunk);
    });
    const follow = readPodLog(this.site.config, this.namespace, member.pod, TASK_CONTAINER, counter, true);
    follow.done.catch(tolerated("following a pod's log", { pod: member.pod }));
    void member.ended.then(async () => {
      follow.cancel();
      const rest = new PassThrough();
      const chunks: Buffer[] = [];
      rest.on("data", (chunk: Buffer) => chunks.push(chunk));
      // A kubelet ends the answer with the log; kwok's test logs may be followed whatever is asked: cut off then.
      const last = readPodLog(this.site.config, this.namespace, member.pod, TASK_CONTAINER, rest, false);
      await withinOrNot(last.done, FINAL_READ_MS).catch(tolerated("reading a pod's whole log", { pod: member.pod }));
      last.cancel();
      const whole = Buffer.concat(chunks);
      if (whole.length > received) out.write(whole.subarray(received));
      out.end();
    });
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.members.values()].filter((m) => !m.reported).map((m) => this.stop(m.key, 0)));
    for (const member of this.members.values()) member.unwatch?.();
    if (this.service)
      await this.site.core
        .deleteNamespacedService({ name: serviceName(this.site.owner.runId, this.group.name), namespace: this.namespace })
        .catch((error: unknown) => {
          if (!isStatus(error, 404)) throw error;
        });
    if (this.podGroup) await this.site.podGroups.deleteAll(this.id);
  }

  private member(key: string, taskName: string, retryId: number): KubernetesMember {
    const existing = this.members.get(key);
    if (existing) return existing;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const pod = podName(this.site.owner.runId, taskName, retryId, key);
    const member: KubernetesMember = { key, taskName, pod, placed: false, prepared: false, ready: false, reported: false, ended, end };
    member.unwatch = this.site.watch(pod, (object, gone) => this.onPod(member, object, gone));
    this.members.set(key, member);
    return member;
  }

  private onPod(member: KubernetesMember, pod: V1Pod, gone: boolean): void {
    if (pod.metadata?.annotations?.[ANNOTATIONS.key] !== member.key || member.reported) return;
    member.last = pod;
    const outcome = podOutcome(pod, gone);
    if (outcome) {
      this.report(member, outcome);
      if (!gone && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed") void this.deletePod(member, 0);
      return;
    }
    const problem = waitingProblem(pod);
    if (problem) {
      // The kubelet would keep trying (ImagePullBackOff): the attempt ends here, as OSMO's does.
      this.report(member, problem);
      void this.deletePod(member, 0);
      return;
    }
    const placement = podPlacement(pod);
    const unplaced = member.placed ? undefined : unschedulableReason(pod);
    if (unplaced && unplaced !== member.unplaced) {
      member.unplaced = unplaced;
      this.listener.unplaced?.(member.key, unplaced);
    }
    if (placement && !member.placed) {
      member.placed = true;
      const hostName = memberHostName(
        member.taskName,
        serviceName(this.site.owner.runId, this.group.name),
        this.namespace,
        this.site.clusterDomain,
      );
      this.listener.placed(member.key, { address: placement.address, hostName, node: placement.node });
    }
    const running = pod.status?.containerStatuses?.some((s) => s.name === TASK_CONTAINER && s.state?.running);
    if (member.placed && member.prepared && running && !member.ready && !member.stopping) {
      member.ready = true;
      this.listener.ready(member.key);
    }
  }

  /** A member whose fate cannot be known: the engine is told by reattach's answer, not by an event. */
  private forget(member: KubernetesMember): false {
    member.reported = true;
    member.end();
    member.unwatch?.();
    return false;
  }

  private report(member: KubernetesMember, outcome: MemberOutcome): void {
    if (member.reported) return;
    member.reported = true;
    member.end();
    this.listener.exited(member.key, outcome);
  }

  /** Asks for the pod's deletion; false when there is no such pod. */
  private async deletePod(member: KubernetesMember, graceSeconds: number): Promise<boolean> {
    return retrying(() =>
      this.site.core.deleteNamespacedPod({ name: member.pod, namespace: this.namespace, gracePeriodSeconds: graceSeconds }),
    ).then(
      () => true,
      (error: unknown) => {
        if (isStatus(error, 404)) return false;
        tolerated("deleting a pod", { pod: member.pod }, "warn")(error);
        return true;
      },
    );
  }
}

/** `promise`, or nothing after `ms`. */
function withinOrNot(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

/** Whether `promise` settles within `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * The directories of the data volume a pod is to mount, made before the pod is (a kubelet would make a missing
 * sub-path as root, which troupe might then not write into). Those the task writes are writable by any user:
 * the pod's user is its image's, unknown here; the directories are inside troupe's home.
 */
function makeMountSources(mounts: readonly TaskMount[], sight: MountSight): void {
  if (!sight.dataVolume) return;
  for (const mount of mounts) {
    if (pathInside(sight.dataVolume.path, mount.source) === undefined) continue;
    mkdirSync(mount.source, { recursive: true });
    if (!mount.readOnly) chmodSync(mount.source, 0o777);
  }
}
