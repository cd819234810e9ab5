/**
 * Credentials in troupe.db: the payload of each sealed with the credential
 * key (store/credential-key.ts, kept outside the database); its type, the
 * names of its payload's keys, a DATA credential's endpoint (which bucket it
 * is for, not a secret) and its dates in the clear, for `list`. A payload is
 * opened only for use (a run's transfers), never to be shown.
 */
import type Database from "better-sqlite3";
import { TroupeError } from "../errors/index.js";
import { loadKey, type CredentialKey } from "./credential-key.js";

/** What `list` shows of a credential: never a value of its payload. */
export interface CredentialSummary {
  name: string;
  type: string;
  /** Its payload's keys, sorted. */
  keys: string[];
  /** A DATA credential's endpoint (s3://BUCKET): which store it opens. */
  profile: string | null;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  name: string;
  type: string;
  keys: string;
  profile: string | null;
  key_id: string;
  payload: Buffer;
  created_at: number;
  updated_at: number;
}

export class CredentialTable {
  private key: CredentialKey | undefined;

  /** `owner`: whose credentials ("" for this home's own user; a server's user by their token's name). */
  constructor(
    private readonly db: Database.Database,
    private readonly home: string,
    private readonly owner = "",
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Sets (creates or replaces) credential `name`. */
  set(name: string, type: string, payload: Readonly<Record<string, string>>, profile: string | null = null, now = Date.now()): void {
    // One key seals every owner's credentials (the home's, or the server's): a key is made only for a store that has
    // no credentials at all yet; otherwise the one they were sealed with is missing, and a new one would split them.
    const any = this.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM credentials").get()!.n;
    const key = this.theKey(any === 0);
    if (!key) throw this.missingKey();
    const others = this.db
      .prepare<[string], { name: string; owner: string }>("SELECT name, owner FROM credentials WHERE key_id <> ? LIMIT 1")
      .get(key.id);
    // Another owner's credential is not named to this one: only that another key sealed it.
    if (others) throw this.wrongKey(key, others.owner === this.owner ? others.name : undefined);
    const sealed = key.seal(Buffer.from(JSON.stringify(payload)), this.associated(name, type));
    this.db
      .prepare(
        `INSERT INTO credentials (owner, name, type, keys, profile, key_id, payload, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, name) DO UPDATE SET type = excluded.type, keys = excluded.keys, profile = excluded.profile,
           key_id = excluded.key_id, payload = excluded.payload, updated_at = excluded.updated_at`,
      )
      .run(this.owner, name, type, JSON.stringify(Object.keys(payload).sort()), profile, key.id, sealed, now, now);
  }

  list(): CredentialSummary[] {
    return this.db
      .prepare<[string], Row>("SELECT * FROM credentials WHERE owner = ? ORDER BY name")
      .all(this.owner)
      .map((row) => ({
        name: row.name,
        type: row.type,
        keys: JSON.parse(row.keys) as string[],
        profile: row.profile,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      }));
  }

  /** Whether there was one to delete. */
  delete(name: string): boolean {
    return this.db.prepare("DELETE FROM credentials WHERE owner = ? AND name = ?").run(this.owner, name).changes > 0;
  }

  /** The opened payloads of every credential of `type`; none without a key. A key that does not open them is an error. */
  payloads(type: string): Array<{ name: string; payload: Record<string, string> }> {
    const rows = this.db
      .prepare<[string, string], Row>("SELECT * FROM credentials WHERE owner = ? AND type = ? ORDER BY name")
      .all(this.owner, type);
    return rows.map((row) => ({ name: row.name, payload: this.open(row) }));
  }

  /** The opened payloads (and types) of the credentials named that exist; a key that does not open them is an error. */
  named(names: readonly string[]): Map<string, { type: string; payload: Record<string, string> }> {
    const found = new Map<string, { type: string; payload: Record<string, string> }>();
    if (names.length === 0) return found;
    const select = this.db.prepare<[string, string], Row>("SELECT * FROM credentials WHERE owner = ? AND name = ?");
    for (const name of new Set(names)) {
      const row = select.get(this.owner, name);
      if (row) found.set(name, { type: row.type, payload: this.open(row) });
    }
    return found;
  }

  private open(row: Row): Record<string, string> {
    const key = this.theKey(false);
    if (!key) throw this.missingKey();
    if (row.key_id !== key.id) throw this.wrongKey(key, row.name);
    try {
      return JSON.parse(key.open(row.payload, this.associated(row.name, row.type)).toString()) as Record<string, string>;
    } catch {
      throw this.wrongKey(key, row.name);
    }
  }

  private theKey(create: boolean): CredentialKey | undefined {
    return (this.key ??= loadKey(this.home, create, this.env));
  }

  private keyPlace(): string {
    return this.env.TROUPE_CREDENTIAL_KEY_FILE ?? `${this.home}/credential.key`;
  }

  private associated(name: string, type: string): string {
    return JSON.stringify([this.owner, name, type]);
  }

  private missingKey(): TroupeError {
    return new TroupeError(
      "E_CREDENTIAL_KEY",
      `the credential key is missing (${this.keyPlace()}): the stored credentials cannot be opened`,
      "system",
      "restore the key file, or set the credentials again after `troupe credential delete`",
    );
  }

  private wrongKey(key: CredentialKey, name: string | undefined): TroupeError {
    return new TroupeError(
      "E_CREDENTIAL_KEY",
      `the credential key ${key.path} is not the one ${name === undefined ? "the stored credentials were" : `credential \`${name}\` was`} sealed with`,
      "system",
      "use the key file the credentials were set with (TROUPE_CREDENTIAL_KEY_FILE), or delete them and set them again",
    );
  }
}
