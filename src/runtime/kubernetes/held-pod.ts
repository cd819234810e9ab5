/**
 * The pod of a member as it is placed (deciding only): the attempt's pod of objects.ts, whose container runs
 * the barrier's holder (barrier.ts) until the launch and the release come, with the holder's volumes, the
 * annotation it waits on set to `held`, and the pool's own annotations (a pod template's).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { MemberRef, TaskLaunch } from "../../port/index.js";
import { BARRIER_ANNOTATION, HELD, holderScript, holderVolumes } from "./barrier.js";
import { podDataMounts, type DataVolume } from "./data-volume.js";
import { podName, type Owner } from "./names.js";
import { attemptPod, type KubernetesPodSettings } from "./objects.js";
import type { GangSettings } from "./pod-groups.js";
import { placePod, type PlacementSettings } from "./platforms.js";

/** What a pool adds to every pod it makes. */
export interface HeldPodSettings extends KubernetesPodSettings, GangSettings, PlacementSettings {
  /** Annotations every pod gets (a pod template's; the test cluster's kwok reads its `troupe.test/*` ones). */
  podAnnotations?: Record<string, string>;
  /** The image of a member whose task names none (never, for workflows: every task has one). */
  defaultImage?: string;
  /** The ReadWriteMany volume troupe's home is on, through which pods see their data (data-volume.ts). */
  dataVolume?: DataVolume;
  /** troupe's home on this machine (its directories reach a pod only through the data volume). */
  home: string;
}

export function heldPod(member: MemberRef, groupName: string, owner: Owner, settings: HeldPodSettings): V1Pod {
  const name = podName(owner.runId, member.taskName, member.retryId, member.key);
  const shell: TaskLaunch = {
    key: member.key,
    taskName: member.taskName,
    groupName,
    retryId: member.retryId,
    image: member.image ?? settings.defaultImage ?? "busybox",
    argv: ["/bin/sh", "-c", holderScript()],
    env: {},
    files: [],
    outputDir: "",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "",
    resources: member.resources,
  };
  const pod = attemptPod(shell, owner, settings);
  const holder = holderVolumes(name);
  // Its data directories now: a pod's volumes are fixed when it is made (MemberRef.mounts).
  const data = podDataMounts(member.mounts ?? [], settings, member.taskName);
  pod.metadata!.annotations = { ...settings.podAnnotations, ...pod.metadata!.annotations, [BARRIER_ANNOTATION]: HELD };
  pod.spec!.volumes = [...(pod.spec!.volumes ?? []), ...holder.volumes, ...data.volumes];
  const container = pod.spec!.containers[0]!;
  container.volumeMounts = [...(container.volumeMounts ?? []), ...holder.mounts, ...data.mounts];
  // Where it may run: the pool's and its platform's node selectors, tolerations and templates, its task's excluded nodes.
  return placePod(pod, member, settings);
}
