/**
 * What a pod's state means to troupe (deciding only): where it was placed, why it waits, and how its attempt
 * ended, read as OSMO reads them. The runtime reports outcomes; the engine decides statuses from them
 * (image-pull: FAILED_IMAGE_PULL, evicted: FAILED_EVICTED, preempted: FAILED_PREEMPTED, backend-error:
 * FAILED_BACKEND_ERROR, exited: the exact code, 137 with the reason OOMKilled).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { MemberOutcome } from "../../port/index.js";
import { TASK_CONTAINER } from "./objects.js";

/** Waiting reasons of a container whose image cannot be had (the kubelet's words). */
const IMAGE_PULL_REASONS = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"]);
/** Waiting reasons of a container that cannot be made or started for another reason than its image. */
const START_REASONS = new Set([
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "PreCreateHookError",
  "PreStartHookError",
]);

/** Where the pod runs, once the scheduler has bound it and the kubelet has given it an address. */
export function podPlacement(pod: V1Pod): { node: string; address: string } | undefined {
  const node = pod.spec?.nodeName;
  const address = pod.status?.podIP;
  return node && address ? { node, address } : undefined;
}

/** Why the scheduler has not placed the pod (its PodScheduled condition's message), if it says. */
export function unschedulableReason(pod: V1Pod): string | undefined {
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status !== "False") return undefined;
  return scheduled.message || scheduled.reason || "unschedulable";
}

/**
 * A container that waits for something that will not come by itself: its image cannot be had, or it cannot be
 * made. The kubelet keeps trying (ImagePullBackOff); whether and when to give up is the caller's choice.
 */
export function waitingProblem(pod: V1Pod): Extract<MemberOutcome, { kind: "image-pull" | "start-failed" }> | undefined {
  const waiting = taskStatus(pod)?.state?.waiting;
  if (!waiting?.reason) return undefined;
  const message = waiting.message ? `${waiting.reason}: ${waiting.message}` : waiting.reason;
  if (IMAGE_PULL_REASONS.has(waiting.reason)) return { kind: "image-pull", message };
  if (START_REASONS.has(waiting.reason)) return { kind: "start-failed", message };
  return undefined;
}

/**
 * How the attempt ended, once the pod says it has (phase Succeeded or Failed, a DisruptionTarget condition, or
 * deleted: `gone`), or undefined while it has not. Taking the pod's place away is told apart from the command's own end by the
 * DisruptionTarget condition and the pod's reason, which the scheduler, the kubelet and the taint manager set.
 */
export function podOutcome(pod: V1Pod, gone = false): MemberOutcome | undefined {
  const phase = pod.status?.phase;
  // A disruption ends the attempt even while the API still says Running (a lost node's pods stay so).
  const disruption = pod.status?.conditions?.find((c) => c.type === "DisruptionTarget" && c.status === "True");
  if (!gone && !disruption && phase !== "Succeeded" && phase !== "Failed") return undefined;
  const why = (fallback: string) => disruption?.message || pod.status?.message || fallback;
  if (disruption?.reason === "PreemptionByScheduler") return { kind: "preempted", message: why("preempted by a pod of higher priority") };
  if (pod.status?.reason === "Evicted" || disruption?.reason === "TerminationByKubelet" || disruption?.reason === "EvictionByEvictionAPI")
    return { kind: "evicted", message: why("evicted") };
  if (disruption?.reason === "DeletionByTaintManager" || disruption?.reason === "DeletionByPodGC")
    return { kind: "backend-error", message: why(`node ${pod.spec?.nodeName ?? "?"} lost`) };
  const terminated = taskStatus(pod)?.state?.terminated;
  if (terminated) {
    const reason = terminated.reason && terminated.reason !== "Completed" && terminated.reason !== "Error" ? terminated.reason : undefined;
    return reason ? { kind: "exited", code: terminated.exitCode, reason } : { kind: "exited", code: terminated.exitCode };
  }
  const problem = waitingProblem(pod);
  if (problem) return problem;
  if (gone && !pod.spec?.nodeName) return { kind: "start-failed", message: "the pod was deleted before it was placed" };
  if (gone && !taskStatus(pod)?.state?.running) return { kind: "start-failed", message: "the pod was deleted before its command started" };
  return { kind: "lost", message: `the pod ended (${phase ?? "deleted"}) without its command's exit status` };
}

function taskStatus(pod: V1Pod) {
  const statuses = pod.status?.containerStatuses;
  return statuses?.find((s) => s.name === TASK_CONTAINER) ?? statuses?.[0];
}
