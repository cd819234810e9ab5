/**
 * How a pod is shown the directories of its attempt (TaskLaunch.mounts: output, inputs, checkpoints, volume
 * mounts), deciding only. Pods share no disk with troupe, except through a ReadWriteMany volume the pool names
 * (`data_volume:`): a PersistentVolumeClaim the pods mount, which troupe's machine sees at `data_volume_path`
 * (an NFS or other shared mount of the same storage). troupe's home is on it, so a run's data directory is, and
 * each directory of an attempt is the claim's sub-path at the same place under it: the pod mounts it by
 * `subPath` at OSMO's path (/osmo/data/output, /osmo/data/input/N), as a container is shown it here. troupe
 * moves `url:` data on its side of the volume, as on one machine.
 *
 * A mount whose source is elsewhere is a host path of the node's (a `volumeMounts` entry the pool allowed), as
 * OSMO's pod templates mount them. Without a data volume, troupe's own directories are not brought (the pool
 * then says it brings no data: PoolCapabilities.taskData false, and such workflows are refused before they run).
 */
import { isAbsolute, relative } from "node:path";
import type { V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { TaskMount } from "../../port/index.js";

/** A ReadWriteMany PersistentVolumeClaim of the pool's namespace, and where troupe's machine sees its root. */
export interface DataVolume {
  claim: string;
  /** An absolute directory of troupe's machine: the claim's root as seen here. */
  path: string;
}

/** Where a pod's directories come from: the pool's data volume, and troupe's home (its own directories). */
export interface MountSight {
  dataVolume?: DataVolume;
  home: string;
}

export const DATA_VOLUME = "troupe-data";
const HOST_VOLUME_PREFIX = "troupe-host-";

/** `path` inside `root` (`""` for the root itself), or undefined when it is outside. */
export function pathInside(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  return rel.startsWith("..") || isAbsolute(rel) ? undefined : rel;
}

/**
 * The pod's volumes and its container's mounts for an attempt's mounts. Throws (a TroupeError naming the task)
 * for a directory of troupe's that is not on the data volume: the pod could not see it.
 */
export function podDataMounts(
  mounts: readonly TaskMount[],
  sight: MountSight,
  taskName: string,
): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const volumes: V1Volume[] = [];
  const podMounts: V1VolumeMount[] = [];
  const hostVolumes = new Map<string, string>();
  for (const mount of mounts) {
    const onVolume = sight.dataVolume ? pathInside(sight.dataVolume.path, mount.source) : undefined;
    if (onVolume !== undefined) {
      if (!volumes.some((v) => v.name === DATA_VOLUME))
        volumes.push({ name: DATA_VOLUME, persistentVolumeClaim: { claimName: sight.dataVolume!.claim } });
      podMounts.push({ name: DATA_VOLUME, mountPath: mount.target, readOnly: mount.readOnly, ...(onVolume ? { subPath: onVolume } : {}) });
      continue;
    }
    if (mount.made || pathInside(sight.home, mount.source) !== undefined) {
      // troupe's own directory: without a data volume a pod gets none (the pool refuses workflows that need it).
      if (!sight.dataVolume) continue;
      throw new TroupeError(
        "E_K8S_DATA_VOLUME",
        `task ${taskName}: ${mount.source} (shown at ${mount.target}) is not on the data volume (claim ${sight.dataVolume.claim}, seen here at ${sight.dataVolume.path}), so its pod cannot see it`,
        "usage",
        "keep troupe's home (TROUPE_HOME) on the data volume",
      );
    }
    let name = hostVolumes.get(mount.source);
    if (name === undefined) {
      name = `${HOST_VOLUME_PREFIX}${hostVolumes.size}`;
      hostVolumes.set(mount.source, name);
      volumes.push({ name, hostPath: { path: mount.source } });
    }
    podMounts.push({ name, mountPath: mount.target, readOnly: mount.readOnly });
  }
  return { volumes, mounts: podMounts };
}

/** The mount paths of a launch's mounts its pod lacks (made before the launch was known), if any. */
export function missingMounts(wanted: readonly TaskMount[], sight: MountSight, taskName: string, pod: readonly V1VolumeMount[]): string[] {
  const have = new Set(pod.map((m) => `${m.mountPath}|${m.subPath ?? ""}|${m.readOnly ? 1 : 0}`));
  return podDataMounts(wanted, sight, taskName)
    .mounts.filter((m) => !have.has(`${m.mountPath}|${m.subPath ?? ""}|${m.readOnly ? 1 : 0}`))
    .map((m) => m.mountPath);
}
