/**
 * The barrier's init holder (deciding only): troupe-init (native/k8s-holder.c) instead of a shell, for images
 * that have none. No troupe image in a registry: the static binary travels through the API server, in a
 * ConfigMap's binaryData named by its content's hash (made once per namespace and reused by every pod of every
 * run, immutable), which the pod mounts read-only, executable, at INIT_DIR. The container's command is then
 * `INIT_DIR/troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR`: it waits for the same release annotation and the
 * same launch Secret as the shell holder, but reads its launch from `launch` (launchRecords), not launch.sh.
 *
 * The binary is built for the machine troupe runs on, so the pods are kept to nodes of that architecture
 * (`kubernetes.io/arch`); they carry the binary's hash as a label (INIT_LABEL), by which a sweep knows that
 * no pod uses an old ConfigMap any more (init-binary.ts).
 */
import type { V1ConfigMap, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { TaskLaunch } from "../../port/index.js";
import { LABEL_PREFIX } from "./names.js";

/** Where the pod sees troupe-init (the ConfigMap's volume). */
export const INIT_DIR = "/etc/troupe/bin";
export const INIT_KEY = "troupe-init";
const INIT_VOLUME = "troupe-init";
/** The ConfigMap's labels: troupe's, and which part of troupe. */
export const INIT_COMPONENT_LABEL = `${LABEL_PREFIX}/component`;
export const INIT_COMPONENT = "init";
/** On the ConfigMap and on every pod that mounts it: the binary's hash (how a sweep tells a ConfigMap in use). */
export const INIT_LABEL = `${LABEL_PREFIX}/init`;
/** When a troupe last said it uses the ConfigMap (an ISO time; a sweep spares one said lately: init-binary.ts). */
export const ENSURED_ANNOTATION = `${LABEL_PREFIX}/ensured-at`;
/** The API server refuses a ConfigMap whose data is larger (k8s.io/api core/v1 MaxSecretSize, the same for ConfigMaps). */
export const CONFIG_MAP_DATA_LIMIT = 1024 * 1024;

/** The binary a pool's pods run, as a ConfigMap in one namespace. */
export interface InitRef {
  /** The ConfigMap's name (troupe-init-HASH). */
  configMap: string;
  /** The binary's hash, as the pods' INIT_LABEL. */
  hash: string;
  /** The nodes' `kubernetes.io/arch` the binary runs on. */
  arch: string;
}

export function initConfigMapName(hash: string): string {
  return `troupe-init-${hash}`;
}

/** `kubernetes.io/arch` of the machine troupe runs on (the binary was built here, for it). */
export function nodeArch(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  return names[arch] ?? arch;
}

/** Refuses a binary larger than a ConfigMap holds, before the API server would. */
export function checkInitSize(binary: Buffer): void {
  if (binary.length > CONFIG_MAP_DATA_LIMIT)
    throw new TroupeError(
      "E_K8S_INIT_TOO_LARGE",
      `troupe-init takes ${binary.length} bytes; it reaches pods in a ConfigMap, which holds at most ${CONFIG_MAP_DATA_LIMIT}`,
      "usage",
      "build it stripped (`npm run build`), or hold pods with the image's shell instead: barrier_holder: shell (--barrier-holder shell)",
    );
}

/** The ConfigMap that carries troupe-init into a namespace; refuses a binary larger than a ConfigMap holds. */
export function initConfigMap(binary: Buffer, hash: string, namespace: string, now: Date): V1ConfigMap {
  checkInitSize(binary);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: initConfigMapName(hash),
      namespace,
      labels: { [INIT_COMPONENT_LABEL]: INIT_COMPONENT, [INIT_LABEL]: hash, "app.kubernetes.io/managed-by": "troupe" },
      annotations: { [ENSURED_ANNOTATION]: now.toISOString() },
    },
    binaryData: { [INIT_KEY]: binary.toString("base64") },
    immutable: true,
  };
}

/** The container's command: troupe-init's Kubernetes mode over the holder's two directories. */
export function initCommand(podInfoDir: string, launchDir: string): string[] {
  return [`${INIT_DIR}/${INIT_KEY}`, "--kubernetes", podInfoDir, launchDir];
}

/** The pod's volume of the ConfigMap (read-only, executable) and the container's mount of it. */
export function initVolume(init: InitRef): { volume: V1Volume; mount: V1VolumeMount } {
  return {
    volume: { name: INIT_VOLUME, configMap: { name: init.configMap, defaultMode: 0o555, items: [{ key: INIT_KEY, path: INIT_KEY }] } },
    mount: { name: INIT_VOLUME, mountPath: INIT_DIR, readOnly: true },
  };
}

/** The header troupe-init checks (native/k8s-holder.c). */
const LAUNCH_HEADER = "troupe-launch 1";

/**
 * The launch as troupe-init reads it: NUL-terminated fields, "troupe-launch 1", then `file KEY PATH MODE`
 * (octal), `env NAME=VALUE`, `arg WORD` records, then `end`. `fileKey(i)` names the Secret's key of file i.
 */
export function launchRecords(launch: TaskLaunch, fileKey: (index: number) => string, defaultMode: number): Buffer {
  const fields: string[] = [LAUNCH_HEADER];
  launch.files.forEach((file, index) => fields.push("file", fileKey(index), file.path, (file.mode ?? defaultMode).toString(8)));
  for (const [name, value] of Object.entries(launch.env)) fields.push("env", `${name}=${value}`);
  for (const word of launch.argv) fields.push("arg", word);
  fields.push("end");
  for (const field of fields)
    if (field.includes("\0"))
      throw new TroupeError("E_K8S_LAUNCH", `task ${launch.taskName}: its command, environment or a file path holds a NUL byte`, "usage");
  return Buffer.from(fields.map((field) => `${field}\0`).join(""));
}
