/**
 * The pod of a member as it is placed (deciding only): the attempt's pod of objects.ts, whose container runs
 * the barrier's holder (barrier.ts: a shell script, or troupe-init from its ConfigMap, init-holder.ts) until
 * the launch and the release come, with the holder's volumes, the annotation it waits on set to `held`, and
 * the pool's own annotations (a pod template's).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { MemberRef, TaskLaunch } from "../../port/index.js";
import { podDataMounts, type DataVolume } from "./data-volume.js";
import { BARRIER_ANNOTATION, type BarrierHolder, HELD, holderScript, holderVolumes, LAUNCH_DIR, POD_INFO_DIR } from "./barrier.js";
import { initCommand, INIT_LABEL, initVolume, type InitRef } from "./init-holder.js";
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
  /** What holds the command at the barrier (default init: barrier.ts DEFAULT_BARRIER_HOLDER). */
  barrierHolder?: BarrierHolder;
}

/** The member's held pod; with `init`, troupe-init (from that ConfigMap) holds it, else a shell. */
export function heldPod(member: MemberRef, groupName: string, owner: Owner, settings: HeldPodSettings, init?: InitRef): V1Pod {
  const name = podName(owner.runId, member.taskName, member.retryId, member.key);
  const holder: TaskLaunch = {
    key: member.key,
    taskName: member.taskName,
    groupName,
    retryId: member.retryId,
    image: member.image ?? settings.defaultImage ?? "busybox",
    argv: init ? initCommand(POD_INFO_DIR, LAUNCH_DIR) : ["/bin/sh", "-c", holderScript()],
    env: {},
    files: [],
    outputDir: "",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "",
    resources: member.resources,
  };
  const pod = attemptPod(holder, owner, settings);
  const volumes = holderVolumes(name);
  // Its data directories now: a pod's volumes are fixed when it is made (MemberRef.mounts).
  const data = podDataMounts(member.mounts ?? [], settings, member.taskName);
  pod.metadata!.annotations = { ...settings.podAnnotations, ...pod.metadata!.annotations, [BARRIER_ANNOTATION]: HELD };
  pod.spec!.volumes = [...(pod.spec!.volumes ?? []), ...volumes.volumes, ...data.volumes];
  const container = pod.spec!.containers[0]!;
  container.volumeMounts = [...(container.volumeMounts ?? []), ...volumes.mounts, ...data.mounts];
  if (init) {
    const binary = initVolume(init);
    pod.spec!.volumes.push(binary.volume);
    container.volumeMounts.push(binary.mount);
    // The binary was built for troupe's machine: only nodes of its architecture can run it.
    pod.spec!.nodeSelector = { ...pod.spec!.nodeSelector, "kubernetes.io/arch": init.arch };
    // A sweep deletes an old ConfigMap only once no pod carries its hash (init-binary.ts).
    pod.metadata!.labels = { ...pod.metadata!.labels, [INIT_LABEL]: init.hash };
  }
  // Where it may run: the pool's and its platform's node selectors, tolerations and templates, its task's excluded nodes.
  return placePod(pod, member, settings);
}
