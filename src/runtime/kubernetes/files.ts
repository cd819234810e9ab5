/**
 * A task's `files:` (and the files of its credentials) on Kubernetes, as OSMO puts them (deciding only): one
 * Secret per attempt holding every file, each mounted at its own path by `subPath`, so that a file put into a
 * directory of the image does not hide what else the directory holds. Secrets, not ConfigMaps: credentials are
 * among the files, and a Secret is what RBAC and the kubelet keep out of sight.
 */
import type { V1Secret, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { TaskLaunch } from "../../port/index.js";
import { ANNOTATIONS, attemptLabels, podName, type Owner } from "./names.js";

/** The API server refuses a Secret whose data is larger (k8s.io/api core/v1 MaxSecretSize). */
export const SECRET_DATA_LIMIT = 1024 * 1024;
export const FILES_VOLUME = "troupe-files";
/** Where no mode is given: readable by all, as a file written into the image would be. */
const DEFAULT_MODE = 0o644;

/** The Secret of an attempt's files (named after its pod). */
export function filesSecretName(owner: Owner, launch: TaskLaunch): string {
  return `${podName(owner.runId, launch.taskName, launch.retryId, launch.key)}-files`;
}

const fileKey = (index: number) => `file-${index}`;

/** The Secret holding the attempt's files, or undefined when it has none. Refuses what a Secret cannot hold. */
export function filesSecret(launch: TaskLaunch, owner: Owner, namespace: string): V1Secret | undefined {
  if (launch.files.length === 0) return undefined;
  const size = launch.files.reduce((sum, file) => sum + file.contents.length, 0);
  if (size > SECRET_DATA_LIMIT)
    throw new TroupeError(
      "E_K8S_FILES_TOO_LARGE",
      `task ${launch.taskName}: its files take ${size} bytes; on Kubernetes they travel in a Secret, which holds at most ${SECRET_DATA_LIMIT}`,
      "usage",
      "put large inputs in a dataset or url: input instead of files:",
    );
  for (const file of launch.files)
    if (!file.path.startsWith("/") || file.path.endsWith("/"))
      throw new TroupeError("E_K8S_FILE_PATH", `task ${launch.taskName}: file path "${file.path}" is not an absolute file path`, "usage");
  const data: Record<string, string> = {};
  launch.files.forEach((file, index) => (data[fileKey(index)] = file.contents.toString("base64")));
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: filesSecretName(owner, launch),
      namespace,
      labels: attemptLabels(owner, launch.groupName, launch.taskName, launch.retryId),
      annotations: { [ANNOTATIONS.runId]: owner.runId, [ANNOTATIONS.key]: launch.key },
    },
    data,
    immutable: true,
  };
}

/** The pod's volume for the Secret and the container's mounts, one per file, or nothing without files. */
export function filesMounts(launch: TaskLaunch, owner: Owner): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  if (launch.files.length === 0) return { volumes: [], mounts: [] };
  const volume: V1Volume = {
    name: FILES_VOLUME,
    secret: {
      secretName: filesSecretName(owner, launch),
      items: launch.files.map((file, index) => ({ key: fileKey(index), path: fileKey(index), mode: file.mode ?? DEFAULT_MODE })),
    },
  };
  const mounts = launch.files.map((file, index) => ({ name: FILES_VOLUME, mountPath: file.path, subPath: fileKey(index), readOnly: true }));
  return { volumes: [volume], mounts };
}
