/**
 * The data plane of a run driven from this home (`troupe run`, `troupe
 * restart`): object stores reached with the home's DATA credentials, read
 * (and opened with the credential key) when a run first moves `url:` data,
 * then kept for the run.
 */
import { dataCredentialFrom, objectStoreDataPlane, type DataCredential } from "../data/index.js";
import type { DataPlane } from "../port/index.js";
import type { RunStore } from "../store/index.js";

export function homeDataPlane(store: RunStore): DataPlane {
  let credentials: readonly DataCredential[] | undefined;
  return objectStoreDataPlane({
    credentials: () => (credentials ??= store.credentials.payloads("DATA").map(({ name, payload }) => dataCredentialFrom(name, payload))),
  });
}
