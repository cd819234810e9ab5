/**
 * Where `troupe credential` keeps credentials: this home's store (encrypted
 * with the key beside it), or, when the CLI is pointed at a server (`troupe
 * login`, TROUPE_SERVER) and not told `--local`, the server, as the user the
 * token names (OSMO's `/api/credentials`, whose envelope is built here). The
 * same commands, flags and output either way.
 */
import type { CredentialType } from "../data/index.js";
import type { CredentialSummary, CredentialTable } from "../store/index.js";
import { TroupeError } from "../errors/index.js";
import { call, pointedServer, type ClientConfig } from "./client.js";

export interface CredentialTarget {
  set(name: string, type: CredentialType, payload: Record<string, string>): Promise<void>;
  list(): Promise<CredentialSummary[]>;
  /** Whether there was one to delete. */
  delete(name: string): Promise<boolean>;
}

export function localCredentials(): CredentialTarget {
  return {
    set: (name, type, payload) => withTable((t) => t.set(name, type, payload, type === "DATA" ? payload.endpoint! : null)),
    list: () => withTable((t) => t.list()),
    delete: (name) => withTable((t) => t.delete(name)),
  };
}

async function withTable<T>(use: (table: CredentialTable) => T): Promise<T> {
  const { openStore } = await import("./home.js");
  const { store } = openStore();
  try {
    return use(store.credentials);
  } finally {
    store.close();
  }
}

/** As the server shows a credential (server/api-responses.ts CredentialSchema). */
interface Shown {
  cred_name: string;
  cred_type: string;
  profile: string | null;
  keys: string[];
  created: string;
  updated: string;
}

const path = (name: string) => `/api/credentials/${encodeURIComponent(name)}`;

/** OSMO's request body: the payload under the type's field. */
export function credentialEnvelope(type: CredentialType, payload: Record<string, string>): object {
  if (type === "DATA") return { data_credential: payload };
  if (type === "REGISTRY") return { registry_credential: payload };
  return { generic_credential: { credential: payload } };
}

export function serverCredentials(config: ClientConfig): CredentialTarget {
  return {
    set: async (name, type, payload) => {
      const { status, body } = await call<{ error?: string; code?: string }>("POST", path(name), credentialEnvelope(type, payload), config);
      // The server checks the payload as `troupe credential` does here: its refusal is a usage error alike.
      if (status >= 400) throw new TroupeError(body.code ?? "E_REQUEST", body.error ?? `HTTP ${status}`, "usage");
    },
    list: async () => {
      const { body } = await call<{ credentials: Shown[] }>("GET", "/api/credentials", undefined, config);
      return body.credentials.map((c) => ({
        name: c.cred_name,
        type: c.cred_type,
        keys: c.keys,
        profile: c.profile,
        createdAt: Date.parse(c.created),
        updatedAt: Date.parse(c.updated),
      }));
    },
    delete: async (name) => {
      try {
        await call("DELETE", path(name), undefined, config);
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === "E_NO_CREDENTIAL") return false;
        throw error;
      }
    },
  };
}

/** The server the CLI is pointed at, unless `--local`; else this home. */
export function credentialTarget(local: boolean): CredentialTarget {
  const server = local ? undefined : pointedServer();
  return server ? serverCredentials(server) : localCredentials();
}
