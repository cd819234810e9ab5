/**
 * The data plane of a run: object stores reached with the DATA credentials
 * of whoever runs it (this home's for `troupe run` and `troupe restart`, the
 * submitting user's on a server), read (and opened with the credential key)
 * when the run first moves `url:` data, then kept for the run.
 */
import { dataCredentialFrom, objectStoreDataPlane, type DataCredential } from "../data/index.js";
import type { DataPlane } from "../port/index.js";
import type { CredentialTable, RunStore } from "../store/index.js";

export function credentialDataPlane(table: CredentialTable): DataPlane {
  let credentials: readonly DataCredential[] | undefined;
  return objectStoreDataPlane({
    credentials: () => (credentials ??= table.payloads("DATA").map(({ name, payload }) => dataCredentialFrom(name, payload))),
  });
}

export function homeDataPlane(store: RunStore): DataPlane {
  return credentialDataPlane(store.credentials);
}
