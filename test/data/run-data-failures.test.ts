/**
 * A run whose outputs cannot be uploaded (the store takes the check, then
 * fails every upload: a loopback S3 endpoint, test/data/fake-store.ts): a
 * command that succeeded fails with 2012 and the store's reason; one that
 * failed keeps its own exit code, the failed upload added to its reason. A
 * run without `url:` data never reads the credentials (a broken key does not
 * stop it), one with them says the key is wrong (2013). A cancel while an
 * input is still downloading stops the download and the run at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { FakeStore, isHeadBucket, listing, xmlError } from "./fake-store.js";

let home: TestHome;
let store: FakeStore;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  store = await new FakeStore().start();
  store.handle = (request, response) => (isHeadBucket(request) ? response.end() : xmlError(response, 500, "InternalError", "out of disk"));
  const set = await troupe(
    [
      "credential",
      "set",
      "flaky",
      "--type",
      "data",
      "--payload",
      "endpoint=s3://b",
      "access_key_id=id",
      "access_key=secret-key-1",
      `override_url=${store.url}`,
    ],
    { home: home.home },
  );
  expect(set.code, set.stderr).toBe(0);
}, 200_000);
afterAll(() => {
  store?.close();
  home?.remove();
});

const spec = (name: string, exit: number) =>
  home.spec(
    name,
    `workflow:
  name: ${name}
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "echo result > {{output}}/r.txt; exit ${exit}"]
    outputs:
    - url: s3://b/out
`,
  );

describe("runs whose data cannot move", () => {
  it("fail a command that succeeded with 2012 and the store's reason", async () => {
    const result = await runJson(spec("upload-fails", 0), { home: home.home, timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(taskOf(result.record, "t")).toMatchObject({
      status: "FAILED",
      exit_code: 2012,
      reason: "upload of r.txt to s3://b/out/r.txt failed: InternalError (HTTP 500): out of disk",
    });
    expect(store.seen.some((s) => s.startsWith("PUT /b/out/r.txt"))).toBe(true);
  });

  it("leave a failed command its own exit code, the upload's failure added to its reason", async () => {
    const result = await runJson(spec("command-and-upload-fail", 3), { home: home.home, timeoutMs: 60_000 });
    const t = taskOf(result.record, "t");
    expect(t).toMatchObject({ status: "FAILED", exit_code: 3 });
    expect(t.reason).toBe(
      "exited with 3 (its outputs were not uploaded: upload of r.txt to s3://b/out/r.txt failed: InternalError (HTTP 500): out of disk)",
    );
  });

  it("a wrong credential key fails a task with url: data with 2013 saying so; runs without url: data do not read it", async () => {
    const key = path.join(home.home, "credential.key");
    const kept = fs.readFileSync(key);
    fs.writeFileSync(key, Buffer.alloc(32, 1).toString("base64"), { mode: 0o600 });
    try {
      const result = await runJson(spec("wrong-key", 0), { home: home.home, timeoutMs: 60_000 });
      expect(taskOf(result.record, "t")).toMatchObject({
        status: "FAILED",
        exit_code: 2013,
        reason: `the data credentials could not be read: the credential key ${key} is not the one credential \`flaky\` was sealed with`,
      });
      fs.rmSync(key);
      const missing = await runJson(spec("missing-key", 0), { home: home.home, timeoutMs: 60_000 });
      expect(taskOf(missing.record, "t")).toMatchObject({
        status: "FAILED",
        exit_code: 2013,
        reason: `the data credentials could not be read: the credential key is missing (${key}): the stored credentials cannot be opened`,
      });
      const plain = home.spec("plain", "workflow:\n  name: plain\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: [true]\n");
      expect((await runJson(plain, { home: home.home, timeoutMs: 60_000 })).code).toBe(0);
    } finally {
      fs.writeFileSync(key, kept, { mode: 0o600 });
    }
  });

  it("a cancel while an input downloads aborts it: the run ends FAILED_CANCELED without waiting for the store", async () => {
    const kept = store.handle;
    let hanging = false;
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.url!.includes("list-type=2")) return listing(response, [["in/huge.bin", "x"]]);
      if (request.method === "HEAD") return xmlError(response, 404, "NotFound", "");
      hanging = true;
      response.writeHead(200, { "content-length": 1_000_000_000 });
      response.write("x"); // and nothing more
    };
    try {
      const file = home.spec(
        "hangs",
        `workflow:
  name: hangs
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "echo ran"]
    inputs:
    - url: s3://b/in
`,
      );
      const running = runJson(file, { home: home.home, timeoutMs: 60_000 });
      for (let i = 0; i < 200 && !hanging; i++) await new Promise((r) => setTimeout(r, 50));
      expect(hanging).toBe(true);
      const id = (await troupe(["list", "-n", "1", "--name", "hangs"], { home: home.home })).stdout.match(/hangs-\d+/)![0];
      const canceled = await troupe(["cancel", id, "--timeout", "20"], { home: home.home });
      expect(canceled.code, canceled.stdout + canceled.stderr).toBe(0);
      const result = await running;
      expect(result.record.status).toBe("FAILED_CANCELED");
      expect(taskOf(result.record, "t").status).toBe("FAILED_CANCELED");
      expect(home.log(result.record.id, "t")).toBe("");
    } finally {
      store.handle = kept;
    }
  });
});
