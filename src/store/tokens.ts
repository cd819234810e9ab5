/**
 * API tokens of the server: random, shown once, stored as SHA-256 hashes
 * (a token has 256 bits of entropy, so a plain hash is enough; nothing to salt).
 */
import { createHash, randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import type { TokenOwner } from "./types.js";

const PREFIX = "trp_";

function hashOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class TokenTable {
  private readonly insert: Database.Statement<[string, string, number, number]>;
  private readonly byHash: Database.Statement<[string], { name: string; admin: number }>;

  constructor(db: Database.Database) {
    this.insert = db.prepare("INSERT INTO tokens (name, hash, admin, created_at) VALUES (?, ?, ?, ?)");
    this.byHash = db.prepare("SELECT name, admin FROM tokens WHERE hash = ?");
  }

  /** Makes a token for `name`; the token itself is returned once and never stored. */
  create(name: string, admin: boolean, now = Date.now()): string {
    const token = PREFIX + randomBytes(32).toString("base64url");
    this.insert.run(name, hashOf(token), admin ? 1 : 0, now);
    return token;
  }

  find(token: string): TokenOwner | undefined {
    if (!token.startsWith(PREFIX) || token.length > 200) return undefined;
    const row = this.byHash.get(hashOf(token));
    return row && { name: row.name, admin: row.admin !== 0 };
  }
}
