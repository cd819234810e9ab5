/**
 * A registry login as each engine takes it for one pull: podman an authfile
 * (containers-auth.json: `{"auths": {HOST: {"auth": base64(user:password)}}}`,
 * Docker Hub under `docker.io`), the Engine API an `X-Registry-Auth` header
 * (JSON in URL-safe base64). Neither ever goes on a command line.
 */
import type { RegistryAuth } from "../../port/index.js";

export function podmanAuthFile(auth: RegistryAuth): string {
  const host = auth.host === "registry-1.docker.io" ? "docker.io" : auth.host;
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64") } } }) + "\n";
}

/** URL-safe base64 with its padding, as docker's CLI sends it (Go's base64.URLEncoding; podman's API refuses it unpadded). */
export function registryAuthHeader(auth: RegistryAuth): string {
  const json = JSON.stringify({ username: auth.username, password: auth.password, serveraddress: auth.host });
  return Buffer.from(json).toString("base64").replaceAll("+", "-").replaceAll("/", "_");
}
