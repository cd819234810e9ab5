/**
 * Which REGISTRY credential authorises an image's pull, as OSMO decides it:
 * a credential's `registry` is a scope, a registry host (default Docker Hub,
 * `registry-1.docker.io`; `docker.io` is the same) optionally followed by a
 * path prefix; an image is in a scope when its `host[:port]/name` (Docker
 * Hub's single names under `library/`) is the scope or below it, and the most
 * specific scope wins. The password is the credential's `auth`. Pure.
 */
import type { RegistryAuth } from "../port/index.js";

export const DOCKER_HUB = "registry-1.docker.io";

/** A REGISTRY credential, ready to authorise pulls. */
export interface RegistryLogin {
  /** `host[:port][/path]`, normalized. */
  scope: string;
  username: string;
  password: string;
}

function registryHost(host: string): string {
  const bare = host.replace(/:443$/, "");
  return bare === "" || bare === "docker.io" || bare === "index.docker.io" ? DOCKER_HUB : bare;
}

/** A credential's `registry` as a scope (OSMO's normalize_registry_scope). */
export function normalizeScope(registry: string): string {
  const scope = registry
    .trim()
    .replace(/\/+$/, "")
    .replace(/^[a-z]+:\/\//, "");
  const slash = scope.indexOf("/");
  const host = registryHost(slash < 0 ? scope : scope.slice(0, slash));
  const path = slash < 0 ? "" : scope.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  return path ? `${host}/${path}` : host;
}

export function registryLoginFrom(payload: Readonly<Record<string, string>>): RegistryLogin {
  return {
    scope: normalizeScope(payload.registry ?? ""),
    username: payload.username ?? "",
    password: payload.auth ?? payload.password ?? "",
  };
}

/** An image's registry host and its scope, `host[:port]/name` (docker's rules: a first component with `.` or `:`, or `localhost`, is a host). */
export function imageScope(image: string): { host: string; scope: string } {
  const name = image.replace(/@.*$/, "").replace(/:[\w][\w.-]*$/, "");
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  const hasHost = first !== "" && (first.includes(".") || first.includes(":") || first === "localhost");
  const host = hasHost ? registryHost(first) : DOCKER_HUB;
  let path = hasHost ? name.slice(slash + 1) : name;
  if (host === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  return { host, scope: `${host}/${path}` };
}

/** The login for `image`: the credential whose scope holds it, the most specific first; undefined when none does. */
export function registryAuthFor(image: string, logins: readonly RegistryLogin[]): RegistryAuth | undefined {
  const { host, scope } = imageScope(image);
  const login = logins
    .filter((l) => scope === l.scope || scope.startsWith(`${l.scope}/`))
    .sort((a, b) => b.scope.length - a.scope.length)[0];
  return login && { host, username: login.username, password: login.password };
}
