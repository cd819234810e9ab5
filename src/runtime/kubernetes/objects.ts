/**
 * The Kubernetes objects of a run (deciding only): one pod per task attempt and one headless Service per group,
 * as OSMO makes them (an attempt's files travel in a Secret: files.ts). The objects are plain data of
 * @kubernetes/client-node's types; what sends them is elsewhere. test/k8s/objects.test.ts sends them to a real
 * API server with dryRun=All, so that its validation, defaulting and admission judge them.
 */
import type { V1Container, V1Pod, V1ResourceRequirements, V1Service, V1Toleration } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { TaskLaunch } from "../../port/index.js";
import { nameLabel } from "../member-names.js";
import { filesMounts } from "./files.js";
import { ANNOTATIONS, attemptLabels, groupLabels, podName, serviceName, type Owner } from "./names.js";

/** What a pool with `runtime: kubernetes` says about where and how its pods run. */
export interface KubernetesPodSettings {
  namespace: string;
  /** The scheduler that places the pods (a gang scheduler's, e.g. "kai-scheduler"); the cluster's default otherwise. */
  schedulerName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  priorityClassName?: string;
  /** The extended resource a task's `gpu:` asks for. */
  gpuResource?: string;
  /** Secrets in the namespace that hold registry credentials. */
  imagePullSecrets?: string[];
}

export const DEFAULT_GPU_RESOURCE = "nvidia.com/gpu";
/** The one container of a task's pod. */
export const TASK_CONTAINER = "task";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Refuses settings the API server would refuse for every pod, saying which and why, before anything is sent. */
export function checkPodSettings(settings: KubernetesPodSettings, where: string): void {
  const bad = (what: string) => {
    throw new TroupeError("E_K8S_SETTINGS", `${where}: ${what}`, "usage");
  };
  if (!DNS_LABEL.test(settings.namespace))
    bad(`namespace "${settings.namespace}" is not a DNS label (lower case letters, digits and '-', at most 63)`);
  if (settings.priorityClassName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(settings.priorityClassName))
    bad(`priority class "${settings.priorityClassName}" is not a DNS subdomain`);
  for (const secret of settings.imagePullSecrets ?? [])
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(secret)) bad(`image pull secret "${secret}" is not a DNS subdomain`);
}

/** A task's requests, as limits too (OSMO's pods are Guaranteed where they ask for cpu and memory). */
export function taskResources(resources: TaskLaunch["resources"], gpuResource = DEFAULT_GPU_RESOURCE): V1ResourceRequirements | undefined {
  if (!resources) return undefined;
  const amounts: Record<string, string> = {};
  // Millicores: the API server keeps a quantity as given, and a whole number of millicores is exact.
  if (resources.cpu > 0) amounts.cpu = `${Math.max(1, Math.round(resources.cpu * 1000))}m`;
  if (resources.memoryBytes > 0) amounts.memory = String(Math.ceil(resources.memoryBytes));
  if (resources.gpu > 0) amounts[gpuResource] = String(Math.ceil(resources.gpu));
  if (Object.keys(amounts).length === 0) return undefined;
  return { requests: { ...amounts }, limits: { ...amounts } };
}

/**
 * The pod of one attempt: labelled for finding it again, never restarted by the kubelet (troupe retries with a
 * new attempt), reachable by its task's name under the group's Service, with the launch's command (the whole
 * argv: the image's entrypoint does not run), environment and resources.
 */
export function attemptPod(launch: TaskLaunch, owner: Owner, settings: KubernetesPodSettings): V1Pod {
  // `files:` come from the attempt's Secret (files.ts), which is created with the pod.
  const files = filesMounts(launch, owner);
  const container: V1Container = {
    name: TASK_CONTAINER,
    image: launch.image,
    command: launch.argv,
    // Exactly the launch's environment, in its order.
    env: Object.entries(launch.env).map(([name, value]) => ({ name, value })),
    resources: taskResources(launch.resources, settings.gpuResource),
    // A command that fails without writing its termination message: the end of its log tells why.
    terminationMessagePolicy: "FallbackToLogsOnError",
    ...(launch.privileged ? { securityContext: { privileged: true } } : {}),
    ...(files.mounts.length ? { volumeMounts: files.mounts } : {}),
  };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: podName(owner.runId, launch.taskName, launch.retryId, launch.key),
      namespace: settings.namespace,
      labels: attemptLabels(owner, launch.groupName, launch.taskName, launch.retryId),
      annotations: {
        [ANNOTATIONS.runId]: owner.runId,
        [ANNOTATIONS.key]: launch.key,
        [ANNOTATIONS.group]: launch.groupName,
        [ANNOTATIONS.task]: launch.taskName,
      },
    },
    spec: {
      restartPolicy: "Never",
      hostname: nameLabel(launch.taskName),
      subdomain: serviceName(owner.runId, launch.groupName),
      containers: [container],
      ...(files.volumes.length ? { volumes: files.volumes } : {}),
      // Tasks do not talk to the API server, and their environment is the launch's alone (no variables for
      // every Service of the namespace).
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // `hostNetwork: true` (the pool allowed it): the node's network; its resolver still the cluster's, so that
      // the group's names ({{host:X}}, the headless Service) resolve.
      ...(launch.hostNetwork ? { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" } : {}),
      ...(settings.schedulerName ? { schedulerName: settings.schedulerName } : {}),
      ...(settings.nodeSelector ? { nodeSelector: { ...settings.nodeSelector } } : {}),
      ...(settings.tolerations ? { tolerations: settings.tolerations.map((t) => ({ ...t })) } : {}),
      ...(settings.priorityClassName ? { priorityClassName: settings.priorityClassName } : {}),
      ...(settings.imagePullSecrets?.length ? { imagePullSecrets: settings.imagePullSecrets.map((name) => ({ name })) } : {}),
    },
  };
}

/**
 * The headless Service of a group: no cluster IP, no ports, selecting the group's pods, publishing their
 * addresses before they are ready (the members resolve each other while troupe holds their commands at the
 * barrier, before any is ready).
 */
export function groupService(groupName: string, owner: Owner, settings: KubernetesPodSettings): V1Service {
  const labels = groupLabels(owner, groupName);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: serviceName(owner.runId, groupName),
      namespace: settings.namespace,
      labels,
      annotations: { [ANNOTATIONS.runId]: owner.runId, [ANNOTATIONS.group]: groupName },
    },
    // The owner too: two troupe homes may both have a run of the same id in one namespace.
    spec: { clusterIP: "None", selector: { ...labels }, publishNotReadyAddresses: true },
  };
}
