/**
 * The pool's data volume checked against the cluster before its first run (data-volume.ts): the claim is in the
 * pool's namespace and can be mounted by pods on several nodes at once. Said plainly when not, rather than
 * pods that never start ("unbound PersistentVolumeClaim") or stop on their second node.
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import { apiMessage, isStatus, retrying } from "./api-errors.js";
import type { DataVolume } from "./data-volume.js";

export async function checkDataVolume(core: CoreV1Api, namespace: string, volume: DataVolume): Promise<void> {
  const refuse = (what: string, hint?: string) => {
    throw new TroupeError("E_K8S_DATA_VOLUME", `the data volume: ${what}`, "usage", hint);
  };
  let claim;
  try {
    claim = await retrying(() => core.readNamespacedPersistentVolumeClaim({ name: volume.claim, namespace }));
  } catch (error) {
    if (isStatus(error, 404))
      refuse(
        `there is no PersistentVolumeClaim ${volume.claim} in namespace ${namespace}`,
        "make a ReadWriteMany claim there (NFS, CephFS, a cloud file store) and mount the same storage on this machine at data_volume_path",
      );
    refuse(`reading PersistentVolumeClaim ${namespace}/${volume.claim}: ${apiMessage(error)}`);
  }
  const modes = claim!.spec?.accessModes ?? [];
  if (!modes.includes("ReadWriteMany"))
    refuse(
      `PersistentVolumeClaim ${namespace}/${volume.claim} is ${modes.join(", ") || "without access modes"}, not ReadWriteMany: pods on different nodes could not share it`,
    );
}
