/**
 * The container engine's environment, with the paths in it made absolute.
 * `podman run` runs in each attempt's own directory (conmon writes files
 * into its working directory), so a path the user gave relative to where
 * they ran troupe (`CONTAINERS_CONF=scripts/ci-containers.conf troupe run
 * ...`) would name nothing there: such paths are resolved once, against
 * troupe's working directory, and every engine process gets them so.
 */
import { isAbsolute, resolve } from "node:path";

/** Variables the engine (podman, containers/common, containers/image, containers/storage) reads as paths. */
const PATH_VARIABLES = new Set([
  "CONTAINERS_CONF",
  "CONTAINERS_CONF_OVERRIDE",
  "CONTAINERS_STORAGE_CONF",
  "CONTAINERS_REGISTRIES_CONF",
  "REGISTRIES_CONFIG_PATH",
  "REGISTRY_AUTH_FILE",
  "CONTAINER_SSHKEY",
  "DOCKER_CONFIG",
  "DOCKER_CERT_PATH",
  "HOME",
  "TMPDIR",
]);

/** Variables whose value is a list of paths (an empty entry meaning the working directory). */
const LIST_VARIABLES = new Set(["PATH"]);

/** By their name's end, what is a path anywhere else too (XDG_CONFIG_HOME, SOME_TOOL_CONFIG, ...). */
const PATH_SUFFIX = /_(CONF|CONFIG|CONFIG_PATH|FILE|DIR|HOME|PATH)$/;

/** A value that is not a file system path at all (unix:///run/x.sock, ssh://host). */
const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The variables of `env` whose value is a path relative to `cwd`, made
 * absolute (those already absolute, and everything else, are left out).
 */
export function resolvedPathVariables(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === "") continue;
    if (LIST_VARIABLES.has(name)) {
      const entries = value.split(":");
      if (entries.every((entry) => isAbsolute(entry))) continue;
      out[name] = entries.map((entry) => resolve(cwd, entry)).join(":");
    } else if ((PATH_VARIABLES.has(name) || PATH_SUFFIX.test(name)) && !isAbsolute(value) && !URL_LIKE.test(value)) {
      out[name] = resolve(cwd, value);
    }
  }
  return out;
}

/** The whole environment for an engine process: troupe's own, its relative paths resolved. */
export function engineEnvironment(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): NodeJS.ProcessEnv {
  return { ...env, ...resolvedPathVariables(env, cwd) };
}
