/**
 * `troupe credential set|list|delete` through the built CLI on a fresh home:
 * what OSMO's `osmo credential` takes, values never printed back, the
 * database holding no secret in the clear, the key outside it (mode 0600, or
 * TROUPE_CREDENTIAL_KEY_FILE's), and every bad input a clear usage error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, TestHome, troupe } from "../run/helpers.js";

const SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
const REGISTRY_TOKEN = "nvapi-registry-token-0123456789";

let home: TestHome;
beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);
afterAll(() => home?.remove());

const cli = (args: string[], env: Record<string, string> = {}, at = home.home) => troupe(["credential", ...args], { home: at, env });

/** Every byte troupe keeps under the home but the key: the database and its WAL. */
function storedBytes(at: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(at)
      .filter((f) => f.startsWith("troupe.db"))
      .map((f) => fs.readFileSync(path.join(at, f))),
  );
}

describe("troupe credential", () => {
  it("sets, lists (names, types, keys, dates; no values) and deletes, the secrets sealed in the database", async () => {
    const data = await cli([
      "set",
      "lab-data",
      "--type",
      "data",
      "--payload",
      "endpoint=s3://lab-bucket/",
      "region=us-east-1",
      "access_key_id=AKIAEXAMPLE",
      `access_key=${SECRET}`,
      "override_url=http://127.0.0.1:9000",
    ]);
    expect(data.stderr).toBe("");
    expect(data.code).toBe(0);
    expect(data.stdout).toBe("Set DATA credential lab-data.\n");
    const tokenFile = path.join(home.home, "token.txt");
    fs.writeFileSync(tokenFile, `${REGISTRY_TOKEN}\n`);
    const registry = await cli([
      "set",
      "ngc",
      "--type",
      "REGISTRY",
      "--payload",
      "registry=nvcr.io",
      "username=$oauthtoken",
      "--payload-file",
      `auth=${tokenFile}`,
    ]);
    expect(registry.code, registry.stderr).toBe(0);

    const list = await cli(["list"]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+TYPE\s+KEYS\s+PROFILE\s+CREATED\s+UPDATED$/);
    expect(lines[1]).toMatch(
      /^lab-data\s+DATA\s+access_key,access_key_id,endpoint,override_url,region\s+s3:\/\/lab-bucket\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/,
    );
    expect(lines[2]).toMatch(/^ngc\s+REGISTRY\s+auth,registry,username\s+-\s/);
    const json = await cli(["list", "--output", "json"]);
    const parsed = JSON.parse(json.stdout) as { credentials: Array<{ name: string; keys: string[]; created: string }> };
    expect(parsed.credentials.map((c) => c.name)).toEqual(["lab-data", "ngc"]);
    for (const output of [list.stdout, json.stdout, data.stdout, registry.stdout]) {
      expect(output).not.toContain(SECRET);
      expect(output).not.toContain(REGISTRY_TOKEN);
      expect(output).not.toContain("AKIAEXAMPLE");
    }

    // Sealed: neither secret (nor the access key id) is anywhere in the database files.
    const stored = storedBytes(home.home);
    expect(stored.length).toBeGreaterThan(0);
    for (const secret of [SECRET, REGISTRY_TOKEN, "AKIAEXAMPLE"]) expect(stored.includes(Buffer.from(secret))).toBe(false);
    const key = path.join(home.home, "credential.key");
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);

    // Set again: replaced, created date kept.
    const again = await cli(["set", "ngc", "--type", "registry", "--payload", "auth=other-token-value"]);
    expect(again.code, again.stderr).toBe(0);
    const after = JSON.parse((await cli(["list", "--output", "json"])).stdout) as {
      credentials: Array<{ name: string; keys: string[]; created: string; updated: string }>;
    };
    const ngc = after.credentials.find((c) => c.name === "ngc")!;
    expect(ngc.keys).toEqual(["auth"]);
    expect(ngc.created).toBe(parsed.credentials.find((c) => c.name === "ngc")!.created);

    const deleted = await cli(["delete", "ngc"]);
    expect(deleted.stdout).toBe("Deleted credential ngc.\n");
    expect(JSON.parse((await cli(["list", "--output", "json"])).stdout).credentials).toHaveLength(1);
    const missing = await cli(["delete", "ngc"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("E_NO_CREDENTIAL: there is no credential `ngc`");
  });

  it.each([
    [
      ["set", "x", "--type", "blob", "--payload", "a=b"],
      "E_CREDENTIAL_TYPE: `blob` is not a credential type; the types are registry, data and generic",
    ],
    [
      ["set", "x", "--type", "data", "--payload", "endpoint=s3://b"],
      "E_CREDENTIAL_PAYLOAD: a DATA credential needs `access_key_id`, `access_key`",
    ],
    [["set", "x", "--type", "data", "--payload", "endpoint=s3://b", "access_key_id=a", "access_key=b", "secret=c"], "takes no `secret`"],
    [
      ["set", "x", "--type", "data", "--payload", "endpoint=http://minio:9000", "access_key_id=a", "access_key=b"],
      "give it as override_url=http://minio:9000 and the bucket as endpoint=s3://BUCKET",
    ],
    [
      ["set", "x", "--type", "data", "--payload", "endpoint=gs://b", "access_key_id=a", "access_key=b"],
      "`gs://` is not a scheme troupe can transfer; supported: s3://",
    ],
    [
      ["set", "x", "--type", "data", "--payload", "endpoint=s3://b", "access_key_id=a", "access_key=b", "override_url=minio:9000"],
      "override_url `minio:9000` is not an http:// or https:// address",
    ],
    [["set", "x", "--type", "registry", "--payload", "username=u"], "a REGISTRY credential needs `auth`"],
    [["set", "1bad", "--payload", "a=b"], "E_CREDENTIAL_NAME: `1bad` is not a credential name"],
    [["set", "x", "--payload", "novalue"], "--payload `novalue`: give key=value, both non-empty"],
    [["set", "x", "--payload", "a=b", "a=c"], "the payload key `a` is given twice"],
    [["set", "x"], "a credential needs a payload"],
    [["set", "x", "--payload-file", "a=/nonexistent/file"], "--payload-file a=/nonexistent/file: no such file"],
  ])("refuses %j as bad usage, saying what is wrong", async (args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe("");
  });

  it("keeps the key where TROUPE_CREDENTIAL_KEY_FILE says, and fails clearly with a wrong, missing, open or malformed key", async () => {
    const other = fs.mkdtempSync(path.join(home.home, "keyed-"));
    const keyFile = path.join(home.home, `key-${path.basename(other)}`);
    fs.writeFileSync(keyFile, Buffer.alloc(32, 7).toString("base64") + "\n", { mode: 0o600 });
    const set = await cli(["set", "g", "--payload", `token=${SECRET}`], { TROUPE_CREDENTIAL_KEY_FILE: keyFile }, other);
    expect(set.code, set.stderr).toBe(0);
    expect(fs.existsSync(path.join(other, "credential.key"))).toBe(false);

    // Another key: setting one more is refused (the store would hold payloads no single key opens).
    const wrongKey = path.join(home.home, `wrong-${path.basename(other)}`);
    fs.writeFileSync(wrongKey, Buffer.alloc(32, 9).toString("base64"), { mode: 0o600 });
    const wrong = await cli(["set", "h", "--payload", "a=b"], { TROUPE_CREDENTIAL_KEY_FILE: wrongKey }, other);
    expect(wrong.code).toBe(70);
    expect(wrong.stderr).toContain(`E_CREDENTIAL_KEY: the credential key ${wrongKey} is not the one credential \`g\` was sealed with`);
    // Without the variable the default place has no key, and none is made there for a store that has credentials.
    const fresh = await cli(["set", "h", "--payload", "a=b"], {}, other);
    expect(fresh.stderr).toContain(
      `E_CREDENTIAL_KEY: the credential key is missing (${path.join(other, "credential.key")}): the stored credentials cannot be opened`,
    );
    expect(fs.existsSync(path.join(other, "credential.key"))).toBe(false);

    const missing = await cli(["set", "h", "--payload", "a=b"], { TROUPE_CREDENTIAL_KEY_FILE: path.join(other, "nope.key") }, other);
    expect(missing.stderr).toContain(`the credential key ${path.join(other, "nope.key")} (TROUPE_CREDENTIAL_KEY_FILE) does not exist`);
    fs.chmodSync(wrongKey, 0o644);
    const open = await cli(["set", "h", "--payload", "a=b"], { TROUPE_CREDENTIAL_KEY_FILE: wrongKey }, other);
    expect(open.stderr).toContain(`the credential key ${wrongKey} may be read by other users (mode 644) (chmod 600 ${wrongKey})`);
    const malformed = path.join(home.home, `short-${path.basename(other)}`);
    fs.writeFileSync(malformed, "c2hvcnQ=\n", { mode: 0o600 });
    const short = await cli(["set", "h", "--payload", "a=b"], { TROUPE_CREDENTIAL_KEY_FILE: malformed }, other);
    expect(short.stderr).toContain(`the credential key ${malformed} does not hold 32 bytes in base64`);
    // Listing needs no key: nothing is opened.
    const list = await cli(["list"], { TROUPE_CREDENTIAL_KEY_FILE: malformed }, other);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("GENERIC");
  });

  it("a task cannot read the credential key (troupe's home is hidden from it)", async () => {
    expect((await cli(["set", "peek-target", "--payload", "a=b"])).code).toBe(0);
    const key = path.join(home.home, "credential.key");
    const file = home.spec(
      "peek",
      `workflow:\n  name: peek\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: [sh, -c, "cat ${key} 2>/dev/null && echo READ || echo CANNOT"]\n`,
    );
    for (const isolation of ["netns", "none"]) {
      const run = await troupe(["run", file, "--runtime", "host", "--isolation", isolation], { home: home.home, timeoutMs: 60_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain("CANNOT");
      expect(run.stdout).not.toContain(fs.readFileSync(key, "utf8").trim());
    }
  });

  it("has help with examples for each subcommand", async () => {
    for (const sub of [[], ["set"], ["list"], ["delete"]]) {
      const help = await cli([...sub, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples?:\n\s+\$ troupe credential/);
    }
  });
});
