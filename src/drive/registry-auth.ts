/**
 * The registry logins of a run's image pulls: the REGISTRY credentials of
 * whoever runs it (this home's for `troupe run`, the submitting user's on a
 * server), opened at the first pull that asks, then kept for the run.
 */
import { registryAuthFor, registryLoginFrom, type RegistryLogin } from "../data/index.js";
import type { RegistryAuthority } from "../port/index.js";
import type { CredentialTable } from "../store/index.js";

export function credentialRegistryAuth(table: CredentialTable): RegistryAuthority {
  let logins: readonly RegistryLogin[] | undefined;
  return (image) => {
    // No REGISTRY credential at all: nothing to open (no key needed).
    if (logins === undefined && !table.list().some((c) => c.type === "REGISTRY")) logins = [];
    logins ??= table.payloads("REGISTRY").map(({ payload }) => registryLoginFrom(payload));
    return registryAuthFor(image, logins);
  };
}
