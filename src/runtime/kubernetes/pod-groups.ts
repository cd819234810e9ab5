/**
 * Gang scheduling: one PodGroup per group of several members for the scheduler the pool names
 * (`gang_scheduler`), with `minMember` the group's size, so that the scheduler binds all of its pods or none
 * (OSMO does the same with KAI). Deciding (the object and what each pod carries to join it) and doing (made
 * before the group's pods, deleted with the group; labelled with the run, so that a session's close and a
 * sweep find it). Groups of one member get none: a single pod is its own gang.
 *
 * - coscheduling (kubernetes-sigs/scheduler-plugins): `scheduling.x-k8s.io/v1alpha1` PodGroup; pods labelled
 *   `scheduling.x-k8s.io/pod-group: NAME`; the pool's scheduler name is the one running the plugin.
 * - volcano: `scheduling.volcano.sh/v1beta1` PodGroup in a queue; pods annotated
 *   `scheduling.k8s.io/group-name: NAME`, scheduler `volcano`.
 * - kai (NVIDIA KAI Scheduler): `scheduling.run.ai/v2alpha2` PodGroup in a queue; pods annotated
 *   `pod-group-name: NAME` and labelled `kai.scheduler/queue`, scheduler `kai-scheduler`.
 */
import type { CustomObjectsApi, V1Pod } from "@kubernetes/client-node";
import { apiMessage, isStatus, retrying } from "./api-errors.js";
import { ANNOTATIONS, groupLabels, serviceName, type Owner } from "./names.js";

export const GANG_SCHEDULERS = ["coscheduling", "volcano", "kai", "none"] as const;
export type GangScheduler = (typeof GANG_SCHEDULERS)[number];

interface GangApi {
  group: string;
  version: string;
  plural: string;
  /** The scheduler that reads these PodGroups, when the pool names none. */
  schedulerName?: string;
  /** What a pod carries to be one of the PodGroup `name`'s members. */
  member(name: string, queue: string): { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec(minMember: number, queue: string): Record<string, unknown>;
}

const GANGS: Record<Exclude<GangScheduler, "none">, GangApi> = {
  coscheduling: {
    group: "scheduling.x-k8s.io",
    version: "v1alpha1",
    plural: "podgroups",
    member: (name) => ({ labels: { "scheduling.x-k8s.io/pod-group": name } }),
    spec: (minMember) => ({ minMember }),
  },
  volcano: {
    group: "scheduling.volcano.sh",
    version: "v1beta1",
    plural: "podgroups",
    schedulerName: "volcano",
    member: (name) => ({ annotations: { "scheduling.k8s.io/group-name": name } }),
    spec: (minMember, queue) => ({ minMember, queue }),
  },
  kai: {
    group: "scheduling.run.ai",
    version: "v2alpha2",
    plural: "podgroups",
    schedulerName: "kai-scheduler",
    member: (name, queue) => ({ annotations: { "pod-group-name": name }, labels: { "kai.scheduler/queue": queue } }),
    spec: (minMember, queue) => ({ minMember, queue }),
  },
};

export interface GangSettings {
  /** The gang scheduler whose PodGroups troupe makes (default none). */
  gangScheduler?: GangScheduler;
  /** The queue of volcano's and KAI's PodGroups (default `default`). */
  gangQueue?: string;
}

/** A group's PodGroup: named as its Service (one per run and group). */
export function podGroupName(owner: Owner, groupName: string): string {
  return serviceName(owner.runId, groupName);
}

/** The PodGroup of a group of `size` members, or undefined when there is none to make. */
export function podGroup(settings: GangSettings, owner: Owner, groupName: string, size: number, namespace: string) {
  const gang = settings.gangScheduler && settings.gangScheduler !== "none" ? GANGS[settings.gangScheduler] : undefined;
  if (!gang || size < 2) return undefined;
  return {
    apiVersion: `${gang.group}/${gang.version}`,
    kind: "PodGroup",
    metadata: {
      name: podGroupName(owner, groupName),
      namespace,
      labels: groupLabels(owner, groupName),
      annotations: { [ANNOTATIONS.runId]: owner.runId, [ANNOTATIONS.group]: groupName },
    },
    spec: gang.spec(size, settings.gangQueue ?? "default"),
  };
}

/** A member's pod joins its group's PodGroup (and goes to the gang's scheduler unless the pool names one). */
export function joinPodGroup(pod: V1Pod, settings: GangSettings, owner: Owner, groupName: string, size: number): void {
  const gang = settings.gangScheduler && settings.gangScheduler !== "none" ? GANGS[settings.gangScheduler] : undefined;
  if (!gang || size < 2) return;
  const { labels, annotations } = gang.member(podGroupName(owner, groupName), settings.gangQueue ?? "default");
  pod.metadata!.labels = { ...pod.metadata!.labels, ...labels };
  pod.metadata!.annotations = { ...pod.metadata!.annotations, ...annotations };
  if (!pod.spec!.schedulerName && gang.schedulerName) pod.spec!.schedulerName = gang.schedulerName;
}

/** Makes and deletes a run's PodGroups through the API server. */
export class PodGroups {
  constructor(
    private readonly custom: CustomObjectsApi,
    private readonly settings: GangSettings & { namespace: string },
  ) {}

  /** Makes the group's PodGroup (a resumed group's is there already: 409 is taken as made). */
  async create(owner: Owner, groupName: string, size: number): Promise<void> {
    const body = podGroup(this.settings, owner, groupName, size, this.settings.namespace);
    if (!body) return;
    const gang = GANGS[this.settings.gangScheduler as keyof typeof GANGS];
    await retrying(() =>
      this.custom.createNamespacedCustomObject({
        group: gang.group,
        version: gang.version,
        plural: gang.plural,
        namespace: this.settings.namespace,
        body,
      }),
    ).catch((error: unknown) => {
      if (!isStatus(error, 409))
        throw new Error(`the API server refused the group's PodGroup (${this.settings.gangScheduler}): ${apiMessage(error)}`);
    });
  }

  /** Deletes the PodGroups of a label selector (a group's, or a whole run's). */
  async deleteAll(labelSelector: string): Promise<void> {
    const scheduler = this.settings.gangScheduler;
    if (!scheduler || scheduler === "none") return;
    const gang = GANGS[scheduler];
    await this.custom
      .deleteCollectionNamespacedCustomObject({
        group: gang.group,
        version: gang.version,
        plural: gang.plural,
        namespace: this.settings.namespace,
        labelSelector,
      })
      .catch((error: unknown) => {
        if (!isStatus(error, 404)) throw error;
      });
  }
}
