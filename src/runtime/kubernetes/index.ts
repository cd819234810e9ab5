export {
  attemptPod,
  checkPodSettings,
  DEFAULT_GPU_RESOURCE,
  groupService,
  TASK_CONTAINER,
  taskResources,
  type KubernetesPodSettings,
} from "./objects.js";
export { ANNOTATIONS, attemptLabels, groupLabels, LABELS, labelValue, memberHostName, podName, serviceName, type Owner } from "./names.js";
export { filesMounts, filesSecret, filesSecretName, FILES_VOLUME, SECRET_DATA_LIMIT } from "./files.js";
export { podOutcome, podPlacement, unschedulableReason, waitingProblem } from "./pod-state.js";
export { KubernetesPool, runSelector, type KubernetesSettings } from "./kubernetes-pool.js";
export {
  BARRIER_ANNOTATION,
  BARRIER_HOLDERS,
  DEFAULT_BARRIER_HOLDER,
  holderScript,
  holderVolumes,
  LAUNCH_DIR,
  launchScript,
  launchSecret,
  POD_INFO_DIR,
  type BarrierHolder,
} from "./barrier.js";
export { heldPod } from "./held-pod.js";
export { ENSURE_EVERY_MS, InitBinaries, STALE_MS } from "./init-binary.js";
export {
  CONFIG_MAP_DATA_LIMIT,
  ENSURED_ANNOTATION,
  initCommand,
  initConfigMap,
  initConfigMapName,
  INIT_DIR,
  INIT_LABEL,
  initVolume,
  launchRecords,
  nodeArch,
  type InitRef,
} from "./init-holder.js";
export { contextNamespace, listNodes, loadKubeConfig, nodesCapacity, parseQuantity, type NodeCapacity } from "./cluster-facts.js";
export { GANG_SCHEDULERS, podGroup, podGroupName, type GangScheduler } from "./pod-groups.js";
export { PULL_SECRET_TYPE, pullSecret } from "./pull-secrets.js";
export { DATA_VOLUME, pathInside, podDataMounts, type DataVolume } from "./data-volume.js";
export { checkPodTemplate, placePod, platformOf, type PlacementSettings, type PlatformSettings, type PodTemplate } from "./platforms.js";
