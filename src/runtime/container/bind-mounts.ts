/**
 * Bind mounts as each engine is told them, whatever characters the paths
 * hold. troupe's mounts are at the host's own paths (TROUPE_HOME's runs, the
 * install's troupe-init), and a home such as `/data/job:3,a` is a real path:
 * podman's `--volume SRC:DST:MODE` and docker's `Binds` split on `:`, so
 * neither is used. podman's `--mount` reads its value as one CSV record
 * (Go's encoding/csv), where a quoted field may hold `,`, `:`, `=`, `"`
 * (doubled) and newlines; the Docker API's `Mounts` takes each path as its
 * own JSON string. What no path can hold (NUL) is refused by the kernel
 * before it reaches either.
 */
export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** One field of a CSV record, quoted when it must be (it holds `,`, `"`, a line break or leading space). */
function csvField(text: string): string {
  return /[",\r\n]|^\s/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The value of podman's `--mount` for `mount`: `type=bind,source=...,target=...[,ro]`, quoted as CSV. */
export function podmanMountValue(mount: BindMount): string {
  const fields = ["type=bind", `source=${mount.source}`, `target=${mount.target}`];
  if (mount.readOnly) fields.push("ro");
  return fields.map(csvField).join(",");
}

/** podman's arguments for these mounts: `--mount VALUE` each. */
export function podmanMountArguments(mounts: readonly BindMount[]): string[] {
  return mounts.flatMap((mount) => ["--mount", podmanMountValue(mount)]);
}

type ApiMount = { Type: "bind"; Source: string; Target: string; ReadOnly: boolean };

/**
 * The Docker API's HostConfig mounts: `Mounts`, each path its own JSON string,
 * not `Binds` (`SRC:DST:MODE`). podman's compatible API, though, joins a
 * `Mounts` entry back into an unquoted `type=bind,source=...` and splits it
 * on `,`: there a mount whose paths hold a `,` goes as a bind (split on `:`),
 * and one whose paths hold both cannot be expressed at all (`refusal` says so).
 */
export function apiMountConfig(
  mounts: readonly BindMount[],
  servedByPodman: boolean,
): { Mounts: ApiMount[]; Binds: string[]; refusal?: undefined } | { refusal: string } {
  const config = { Mounts: [] as ApiMount[], Binds: [] as string[] };
  for (const mount of mounts) {
    const paths = `${mount.source}${mount.target}`;
    if (!servedByPodman || !paths.includes(",")) {
      config.Mounts.push({ Type: "bind", Source: mount.source, Target: mount.target, ReadOnly: mount.readOnly });
    } else if (!paths.includes(":")) {
      config.Binds.push(`${mount.source}:${mount.target}:${mount.readOnly ? "ro" : "rw"}`);
    } else {
      const path = [mount.source, mount.target].find((p) => p.includes(",") && p.includes(":")) ?? mount.source;
      return {
        refusal:
          `E_MOUNT_PATH: podman's Docker-compatible API cannot mount ${JSON.stringify(path)}: it splits mounts on both ":" and ",", ` +
          "and this path holds both; use podman's CLI (--engine podman), or a TROUPE_HOME without them",
      };
    }
  }
  return config;
}
