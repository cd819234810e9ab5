/**
 * Credentials by owner in a real SQLite store (what a server's users rely on):
 * each user's table holds only their own (list, delete, open); a sealed
 * payload moved to another owner's row in the database does not open there
 * (the owner is bound into it), so nobody with write access to rows alone can
 * hand themselves another's secret; one key seals every owner's, and a key
 * file that went missing is never silently replaced while any owner has rows;
 * the home's own credentials and a server user's never meet.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { RunStore } from "../../src/store/index.js";

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), "troupe-cred-store-"));
  homes.push(home);
  return home;
}

describe("credentials by owner", () => {
  it("each user sees, deletes and opens only their own; the home's own are apart", () => {
    const home = freshHome();
    const store = RunStore.open(home);
    try {
      store.credentialsOf("alice").set("api", "GENERIC", { token: "alice-token-value" });
      store.credentialsOf("bob").set("other", "GENERIC", { token: "bob-token-value" });
      expect(
        store
          .credentialsOf("alice")
          .list()
          .map((c) => c.name),
      ).toEqual(["api"]);
      expect(store.credentialsOf("bob").named(["api"]).size).toBe(0);
      expect(store.credentialsOf("bob").delete("api")).toBe(false);
      expect(store.credentials.list()).toEqual([]);
      expect(store.credentialsOf("alice").named(["api"]).get("api")?.payload).toEqual({ token: "alice-token-value" });
      expect(() => store.credentialsOf("")).toThrow();
    } finally {
      store.close();
    }
  });

  it("a sealed payload moved to another owner's row does not open there", () => {
    const home = freshHome();
    const store = RunStore.open(home);
    try {
      store.credentialsOf("alice").set("api", "GENERIC", { token: "alice-token-value" });
      store.credentialsOf("bob").set("api", "GENERIC", { token: "bob-token-value" });
    } finally {
      store.close();
    }
    const db = new Database(join(home, "troupe.db"));
    db.prepare(
      "UPDATE credentials SET payload = (SELECT payload FROM credentials WHERE owner = 'user:alice') WHERE owner = 'user:bob'",
    ).run();
    db.close();
    const again = RunStore.open(home);
    try {
      expect(() => again.credentialsOf("bob").named(["api"])).toThrow(/E_CREDENTIAL_KEY|is not the one credential `api` was sealed with/);
    } finally {
      again.close();
    }
  });

  it("one key for every owner: without the key file, another user's first credential is refused, not sealed with a new key", () => {
    const home = freshHome();
    const store = RunStore.open(home);
    try {
      store.credentialsOf("alice").set("api", "GENERIC", { token: "alice-token-value" });
      rmSync(join(home, "credential.key"));
      expect(() => store.credentialsOf("bob").set("mine", "GENERIC", { token: "bob-token-value" })).toThrow(
        /the credential key is missing/,
      );
      expect(store.credentialsOf("bob").list()).toEqual([]);
    } finally {
      store.close();
    }
  });
});
