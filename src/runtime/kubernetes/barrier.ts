/**
 * The barrier on Kubernetes (deciding only). A pod is created when its member is placed, before its command is
 * known (`{{host:X}}` needs every member placed), so the pod's container starts a holder, not the task:
 *
 * - The holder is either a POSIX shell script (`barrier_holder: shell`; the container's `command`:
 *   `/bin/sh -c HOLDER`; any image with /bin/sh and the usual tools runs it), or troupe-init's Kubernetes mode
 *   (`barrier_holder: init`, the default; init-holder.ts: the static binary comes through the API server in a
 *   ConfigMap, so it runs in any image, even one without a shell). Neither needs a troupe image in a registry.
 * - The launch (files, environment, argv, every token resolved) comes at `prepare` as a Secret, `POD-launch`,
 *   which the pod mounts (optional: the kubelet mounts it once it exists, and refreshes the volume) at
 *   LAUNCH_DIR: `launch.sh` and the files.
 * - The release is the pod's annotation `troupe.dev/barrier` going from `held` to `released` (one PATCH per
 *   member), which the holder reads through a downward API volume of the pod's annotations at POD_INFO_DIR
 *   (the kubelet rewrites it when the annotations change).
 * - Once both are there the holder sources launch.sh (troupe-init reads `launch`, the same in records of its
 *   own), which puts the files in place and `exec`s the command with exactly the launch's environment
 *   (`env -i`): the command is the container's process from then on, so its exit code is the container's.
 *
 * The test cluster's kwok stages (scripts/k8s/kwok-stages.yaml) honour the same annotation: a pod's simulated
 * command "runs" only once it is released.
 */
import type { V1Secret, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { TaskLaunch } from "../../port/index.js";
import { SECRET_DATA_LIMIT } from "./files.js";
import { launchRecords } from "./init-holder.js";
import { ANNOTATIONS, attemptLabels, type Owner } from "./names.js";

export const BARRIER_ANNOTATION = "troupe.dev/barrier";
export const HELD = "held";
export const RELEASED = "released";
/** What holds a pod's command at the barrier: a shell script, or troupe-init (from a ConfigMap). */
export const BARRIER_HOLDERS = ["shell", "init"] as const;
export type BarrierHolder = (typeof BARRIER_HOLDERS)[number];
export const DEFAULT_BARRIER_HOLDER: BarrierHolder = "init";
/** Where the holder sees the pod's annotations (downward API) and the launch (the Secret). */
export const POD_INFO_DIR = "/etc/troupe/pod";
export const LAUNCH_DIR = "/etc/troupe/launch";
const LAUNCH_SCRIPT = "launch.sh";
/** The launch as troupe-init reads it (init-holder.ts launchRecords). */
const LAUNCH_RECORDS = "launch";
const POD_INFO_VOLUME = "troupe-pod-info";
const LAUNCH_VOLUME = "troupe-launch";
const DEFAULT_MODE = 0o644;

/** The holder: waits for the launch and the release, then runs the launch. `base` moves both directories (tests). */
export function holderScript(podInfoDir = POD_INFO_DIR, launchDir = LAUNCH_DIR): string {
  const released = `${BARRIER_ANNOTATION}="${RELEASED}"`;
  return [
    `until [ -f ${quote(`${launchDir}/${LAUNCH_SCRIPT}`)} ] && grep -qx ${quote(released)} ${quote(`${podInfoDir}/annotations`)} 2>/dev/null; do sleep 1; done`,
    `. ${quote(`${launchDir}/${LAUNCH_SCRIPT}`)}`,
  ].join("\n");
}

/** A word for the shell, single-quoted. */
export function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

const fileKey = (index: number) => `file-${index}`;

/** launch.sh: the files put in place with their modes, then the command exec'd with exactly the launch's environment. */
export function launchScript(launch: TaskLaunch, launchDir = LAUNCH_DIR): string {
  const lines = ["set -e"];
  launch.files.forEach((file, index) => {
    const dir = file.path.slice(0, file.path.lastIndexOf("/")) || "/";
    lines.push(
      `mkdir -p ${quote(dir)}`,
      `cp ${quote(`${launchDir}/${fileKey(index)}`)} ${quote(file.path)}`,
      `chmod ${(file.mode ?? DEFAULT_MODE).toString(8)} ${quote(file.path)}`,
    );
  });
  const env = Object.entries(launch.env).map(([name, value]) => quote(`${name}=${value}`));
  lines.push(`exec env -i ${[...env, ...launch.argv.map(quote)].join(" ")}`);
  return `${lines.join("\n")}\n`;
}

export function launchSecretName(pod: string): string {
  return `${pod}-launch`;
}

/** The Secret an attempt's launch travels in (its files, and launch.sh or troupe-init's `launch`); refuses what a Secret cannot hold. */
export function launchSecret(launch: TaskLaunch, owner: Owner, namespace: string, pod: string, holder: BarrierHolder = "shell"): V1Secret {
  for (const file of launch.files)
    if (!file.path.startsWith("/") || file.path.endsWith("/"))
      throw new TroupeError("E_K8S_FILE_PATH", `task ${launch.taskName}: file path "${file.path}" is not an absolute file path`, "usage");
  const data: Record<string, string> =
    holder === "init"
      ? { [LAUNCH_RECORDS]: launchRecords(launch, fileKey, DEFAULT_MODE).toString("base64") }
      : { [LAUNCH_SCRIPT]: Buffer.from(launchScript(launch)).toString("base64") };
  launch.files.forEach((file, index) => (data[fileKey(index)] = file.contents.toString("base64")));
  const size = Object.values(data).reduce((sum, value) => sum + Buffer.from(value, "base64").length, 0);
  if (size > SECRET_DATA_LIMIT)
    throw new TroupeError(
      "E_K8S_FILES_TOO_LARGE",
      `task ${launch.taskName}: its launch (files, environment, command) takes ${size} bytes; on Kubernetes it travels in a Secret, which holds at most ${SECRET_DATA_LIMIT}`,
      "usage",
      "put large inputs in a dataset or url: input instead of files:",
    );
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: launchSecretName(pod),
      namespace,
      labels: attemptLabels(owner, launch.groupName, launch.taskName, launch.retryId),
      annotations: { [ANNOTATIONS.runId]: owner.runId, [ANNOTATIONS.key]: launch.key },
    },
    data,
    immutable: true,
  };
}

/** The holder's volumes: the pod's annotations and the (optional, later) launch Secret. */
export function holderVolumes(pod: string): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  return {
    volumes: [
      { name: POD_INFO_VOLUME, downwardAPI: { items: [{ path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } }] } },
      // Readable by whoever the image's user is (a distroless image's nonroot 65532 too): the holder runs as it.
      { name: LAUNCH_VOLUME, secret: { secretName: launchSecretName(pod), optional: true, defaultMode: 0o444 } },
    ],
    mounts: [
      { name: POD_INFO_VOLUME, mountPath: POD_INFO_DIR, readOnly: true },
      { name: LAUNCH_VOLUME, mountPath: LAUNCH_DIR, readOnly: true },
    ],
  };
}
