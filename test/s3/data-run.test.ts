/**
 * `url:` inputs and outputs of real runs against the real S3 server
 * (SeaweedFS on loopback, scripts/s3/up.sh), with the data credential set
 * through `troupe credential`: a task downloads a URL's objects that its
 * regex keeps (before the barrier) and its output's files that its regex
 * keeps are uploaded (after the command), each transfer an event with its
 * time; wrong keys and a bucket the keys may not use end the task with
 * OSMO's data exit code and the store's reason; an unknown scheme is a
 * validation error. Everything this file writes is under its own prefix of
 * the user bucket.
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, taskOf, TestHome, troupe, type RunTarget } from "../run/helpers.js";
import { attemptServer, clientFor, dataCredentialArgs, emptyPrefix, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/data-run.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-data-run-${randomBytes(4).toString("hex")}`;
const SECRET_MARK = "the secret key must not show";

describe.skipIf(!attempt.server)(`url: inputs and outputs on a real S3 server (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  let home: TestHome;

  const setCredential = async (name: string, endpoint: string, secret: string) => {
    const set = await troupe(dataCredentialArgs(server, name, endpoint, secret), { home: home.home });
    expect(set.code, set.stderr).toBe(0);
  };

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    for (const [key, body] of [
      ["in/a.csv", "1,2\n"],
      ["in/deep/b.csv", "3,4\n"],
      ["in/notes.txt", "not wanted\n"],
    ])
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/${key}`, Body: body }));
    await setCredential("user-bucket", `s3://${bucket}`, server.user.secretAccessKey);
  }, 200_000);

  afterAll(async () => {
    await emptyPrefix(s3, bucket, PREFIX);
    s3.destroy();
    home?.remove();
    releaseServer(server);
  }, 60_000);

  const workflow = (name: string, inputUrl: string, outputUrl: string) =>
    home.spec(
      name,
      `workflow:
  name: ${name}
  tasks:
  - name: reader
    image: alpine:3.18
    command: [sh, -c, "cd {{input:0}} && find . -type f | sort > {{output}}/listing.csv && cat a.csv deep/b.csv > {{output}}/sum.csv && echo log > {{output}}/run.log"]
    inputs:
    - url: ${inputUrl}
      regex: '.*\\.csv$'
    outputs:
    - url: ${outputUrl}
      regex: '.*\\.csv$'
`,
    );

  const objectText = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  const TARGETS: RunTarget[] = process.env.CONTAINERS_CONF ? ["netns", "container"] : ["netns"];
  it.each(TARGETS)(
    "downloads the URL's matching objects before the command and uploads the matching outputs after it (%s)",
    async (target) => {
      const out = `${PREFIX}/out-${target}`;
      const file = workflow(`data-${target}`, `s3://${bucket}/${PREFIX}/in`, `s3://${bucket}/${out}/{{workflow_id}}`);
      const result = await runJson(file, { home: home.home, target, timeoutMs: 120_000 });
      const reader = taskOf(result.record, "reader");
      expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
      expect(reader.status).toBe("COMPLETED");

      const runId = result.record.id;
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${out}/${runId}/` }));
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([`${out}/${runId}/listing.csv`, `${out}/${runId}/sum.csv`]);
      // Only the csv objects were downloaded, under their paths relative to the URL.
      expect(await objectText(`${out}/${runId}/listing.csv`)).toBe("./a.csv\n./deep/b.csv\n");
      expect(await objectText(`${out}/${runId}/sum.csv`)).toBe("1,2\n3,4\n");

      const events = await troupe(["events", runId, "--output", "json"], { home: home.home });
      const list = JSON.parse(events.stdout) as Array<{ from: string; to: string; reason: string; time: string; task?: string }>;
      const reasons = list.filter((e) => e.from === e.to).map((e) => e.reason);
      expect(reasons[0]).toMatch(new RegExp(`^inputs downloaded: 2 files \\(8B\\) from s3://${bucket}/${PREFIX}/in in \\d+\\.\\d\\d s$`));
      expect(reasons[1]).toMatch(
        new RegExp(`^outputs uploaded: 2 files \\(\\d+B\\) to s3://${bucket}/${out}/${runId} in \\d+\\.\\d\\d s$`),
      );
      // The download is done before the command starts, the upload before the task ends.
      const at = (match: (e: (typeof list)[number]) => boolean) => list.findIndex(match);
      expect(at((e) => e.reason.startsWith("inputs downloaded"))).toBeLessThan(at((e) => e.reason === "command started"));
      expect(at((e) => e.reason.startsWith("outputs uploaded"))).toBeLessThan(at((e) => e.to === "COMPLETED" && e.task !== undefined));
    },
  );

  it("round trip: 20 MiB up in parts and down again byte-exact; a task input's regex gives only the files it matches", async () => {
    const at = `s3://${bucket}/${PREFIX}/round-trip`;
    const file = home.spec(
      "round-trip",
      `workflow:
  name: round-trip
  groups:
  - name: make
    tasks:
    - name: producer
      image: alpine:3.18
      command: [sh, -c, "head -c 20971520 /dev/urandom > {{output}}/big.bin && sha256sum {{output}}/big.bin | cut -d' ' -f1 > {{output}}/sum"]
      outputs:
      - url: ${at}
        regex: big
  - name: use
    tasks:
    - name: consumer
      image: alpine:3.18
      command: [sh, -c, "test ! -e {{input:0}}/big.bin && sha256sum {{input:1}}/big.bin | cut -d' ' -f1 | cmp - {{input:0}}/sum && ls {{input:0}} {{input:1}}"]
      inputs:
      - task: producer
        regex: sum
      - url: ${at}
`,
    );
    const result = await runJson(file, { home: home.home, timeoutMs: 120_000 });
    expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
    const object = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}/round-trip/big.bin` }));
    expect(object.ContentLength).toBe(20 * 1024 * 1024);
    // Uploaded in parts (lib-storage's Upload, 8 MiB each): a multipart object's ETag ends with its part count.
    expect(object.ETag).toMatch(/-3"$/);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/round-trip/` }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([`${PREFIX}/round-trip/big.bin`]);
    expect(home.log(result.record.id, "consumer")).toMatch(/\/0:\nsum\n\n.*\/1:\nbig\.bin\n$/);
  });

  it("the live view shows each transfer as a line of its task", async () => {
    const file = workflow("data-view", `s3://${bucket}/${PREFIX}/in`, `s3://${bucket}/${PREFIX}/out-view`);
    const result = await troupe(["run", file], { home: home.home, timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`reader : INITIALIZING inputs downloaded: 2 files \\(8B\\) from s3://${bucket}/${PREFIX}/in in `),
    );
    expect(result.stdout).toMatch(
      new RegExp(`reader : RUNNING outputs uploaded: 2 files \\(\\d+B\\) to s3://${bucket}/${PREFIX}/out-view in `),
    );
  });

  it("wrong keys: the task fails with 2014 (data access unauthorized) and the store's reason, before its command runs; with the keys set right, troupe restart completes it", async () => {
    const other = new TestHome();
    try {
      const set = await troupe(
        [
          "credential",
          "set",
          "wrong",
          "--type",
          "data",
          "--payload",
          `endpoint=s3://${bucket}`,
          `access_key_id=${server.user.accessKeyId}`,
          `access_key=${SECRET_MARK}`,
          `override_url=${server.endpoint}`,
        ],
        { home: other.home },
      );
      expect(set.code, set.stderr).toBe(0);
      const file = other.spec(
        "wrong",
        `workflow:
  name: wrong-keys
  tasks:
  - name: reader
    image: alpine:3.18
    command: [sh, -c, "echo ran > {{output}}/ran"]
    inputs:
    - url: s3://${bucket}/${PREFIX}/in
`,
      );
      const result = await runJson(file, { home: other.home, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      const reader = taskOf(result.record, "reader");
      expect(reader).toMatchObject({ status: "FAILED", exit_code: 2014 });
      expect(reader.reason).toBe(
        `data access unauthorized: s3://${bucket} with the data credential \`wrong\`: SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match the signature you provided. Check your key and signing method.`,
      );
      expect(result.stdout + result.stderr).not.toContain(SECRET_MARK);
      // The command never ran.
      expect(other.log(result.record.id, "reader")).toBe("");

      // The keys set right, `troupe restart` runs it again with them.
      const fixed = await troupe(
        [
          "credential",
          "set",
          "wrong",
          "--type",
          "data",
          "--payload",
          `endpoint=s3://${bucket}`,
          `access_key_id=${server.user.accessKeyId}`,
          `access_key=${server.user.secretAccessKey}`,
          `override_url=${server.endpoint}`,
        ],
        { home: other.home },
      );
      expect(fixed.code, fixed.stderr).toBe(0);
      const restarted = await troupe(["restart", result.record.id, "--output", "json"], { home: other.home, timeoutMs: 60_000 });
      expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0);
      expect(taskOf(JSON.parse(restarted.stdout), "reader")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    } finally {
      other.remove();
    }
  });

  it("an output to a bucket the keys may not write: 2014 with AccessDenied, before the command runs", async () => {
    const denied = `${PREFIX}-denied`;
    await setCredential("denied", `s3://${denied}`, server.user.secretAccessKey);
    const file = home.spec(
      "denied",
      `workflow:
  name: denied
  tasks:
  - name: writer
    image: alpine:3.18
    command: [sh, -c, "echo x > {{output}}/x.csv"]
    outputs:
    - url: s3://${denied}/out
`,
    );
    const result = await runJson(file, { home: home.home, timeoutMs: 60_000 });
    const writer = taskOf(result.record, "writer");
    // The output's bucket is checked before the command (as OSMO does): it never ran.
    expect(writer).toMatchObject({ status: "FAILED", exit_code: 2014 });
    expect(home.log(result.record.id, "writer")).toBe("");
    expect(writer.start_time).toBeNull();
    expect(writer.reason).toMatch(
      new RegExp(`^data access unauthorized: s3://${denied} with the data credential \`denied\`: AccessDenied \\(HTTP 403\\)`),
    );
  });

  it("a URL no credential covers fails with 2014, saying how to set one; an unknown scheme is a validation error", async () => {
    const file = home.spec(
      "uncovered",
      `workflow:
  name: uncovered
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
    inputs:
    - url: s3://nobody-has-this-bucket/x
`,
    );
    const result = await runJson(file, { home: home.home, timeoutMs: 60_000 });
    expect(taskOf(result.record, "t")).toMatchObject({
      status: "FAILED",
      exit_code: 2014,
      reason:
        "no data credential covers s3://nobody-has-this-bucket: set one with `troupe credential set NAME --type data --payload endpoint=s3://nobody-has-this-bucket access_key_id=... access_key=...`",
    });

    const gs = home.spec(
      "gs",
      `workflow:
  name: gs
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
    outputs:
    - url: gs://bucket/out
`,
    );
    const invalid = await troupe(["run", gs], { home: home.home });
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("error E_DATA_URL: `gs://` is not a scheme troupe can transfer; supported: s3://");
  });
});
