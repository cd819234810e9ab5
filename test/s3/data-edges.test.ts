/**
 * `url:` data at its edges, with real runs against the real S3 server: a
 * 1 GiB object up and down again byte-exact (checksums), a store that goes
 * away in the middle of an upload (the task fails with 2012 and the
 * connection's error, in bounded time, and nothing hangs), and a bucket that
 * does not exist (the store's NoSuchBucket, before the command runs).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { Relay } from "./relay.js";
import { attemptServer, clientFor, dataCredentialArgs, emptyPrefix, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/data-edges.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-data-edges-${randomBytes(4).toString("hex")}`;

describe.skipIf(!attempt.server)(`url: data at its edges (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  let home: TestHome;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const set = await troupe(dataCredentialArgs(server, "user-bucket", `s3://${bucket}`), { home: home.home });
    expect(set.code, set.stderr).toBe(0);
  }, 200_000);

  afterAll(async () => {
    await emptyPrefix(s3, bucket, PREFIX);
    s3.destroy();
    home?.remove();
    releaseServer(server);
  }, 60_000);

  it("1 GiB goes up as one object and comes down byte-exact", { timeout: 600_000 }, async () => {
    const at = `s3://${bucket}/${PREFIX}/big`;
    const file = home.spec(
      "big",
      `workflow:
  name: big
  groups:
  - name: make
    tasks:
    - name: producer
      image: alpine:3.18
      command: [sh, -c, "head -c 1073741824 /dev/urandom > {{output}}/big.bin && sha256sum {{output}}/big.bin | cut -d' ' -f1 > {{output}}/sum"]
      outputs:
      - url: ${at}
        regex: big
  - name: use
    tasks:
    - name: consumer
      image: alpine:3.18
      command: [sh, -c, "sha256sum {{input:1}}/big.bin | cut -d' ' -f1 | cmp - {{input:0}}/sum && stat -c %s {{input:1}}/big.bin"]
      inputs:
      - task: producer
        regex: sum
      - url: ${at}
`,
    );
    const result = await runJson(file, { home: home.home, target: "netns", timeoutMs: 540_000 });
    expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
    expect(home.log(result.record.id, "consumer")).toBe("1073741824\n");
  });

  it(
    "a store that goes away during an upload: the task fails with 2012 and the connection's error, in bounded time",
    { timeout: 300_000 },
    async () => {
      const target = new URL(server.endpoint);
      const relay = new Relay({ host: target.hostname, port: Number(target.port) });
      await relay.listen();
      try {
        const other = new TestHome();
        try {
          const set = await troupe(
            dataCredentialArgs(server, "through-relay", `s3://${bucket}`).map((arg) =>
              arg.startsWith("override_url=") ? `override_url=http://127.0.0.1:${relay.port}` : arg,
            ),
            { home: other.home },
          );
          expect(set.code, set.stderr).toBe(0);
          // Once 8 MiB of the upload went through, the server is gone: what is in flight is reset, the rest refused.
          relay.dropWhen = (_connection, received) => {
            if (received > 8 << 20) void relay.stop();
            return false;
          };
          const file = other.spec(
            "gone",
            `workflow:
  name: gone
  tasks:
  - name: writer
    image: alpine:3.18
    command: [sh, -c, "head -c 67108864 /dev/urandom > {{output}}/data.bin"]
    outputs:
    - url: s3://${bucket}/${PREFIX}/gone
`,
          );
          const started = Date.now();
          const result = await runJson(file, { home: other.home, target: "netns", timeoutMs: 240_000 });
          const writer = taskOf(result.record, "writer");
          expect(writer, JSON.stringify(writer)).toMatchObject({ status: "FAILED", exit_code: 2012 });
          expect(writer.reason, writer.reason ?? "").toMatch(
            /^upload of data\.bin to s3:\/\/.*(ECONNREFUSED|ECONNRESET|EPIPE|socket hang up)/i,
          );
          // The SDK's retries give up: bounded, not a hang.
          expect(Date.now() - started).toBeLessThan(200_000);
        } finally {
          other.remove();
        }
      } finally {
        await relay.stop();
      }
    },
  );

  it("a bucket that does not exist: the store's NoSuchBucket, before the command runs", async () => {
    const missing = `${PREFIX}-missing`;
    // With the keys that may use every bucket (the other user's are refused AccessDenied wherever they may not go).
    const admin = dataCredentialArgs(server, "missing", `s3://${missing}`, server.admin.secretAccessKey).map((arg) =>
      arg.startsWith("access_key_id=") ? `access_key_id=${server.admin.accessKeyId}` : arg,
    );
    const set = await troupe(admin, { home: home.home });
    expect(set.code, set.stderr).toBe(0);
    const file = home.spec(
      "missing",
      `workflow:
  name: missing
  tasks:
  - name: reader
    image: alpine:3.18
    command: [sh, -c, "echo ran"]
    inputs:
    - url: s3://${missing}/in
`,
    );
    const result = await runJson(file, { home: home.home, target: "netns", timeoutMs: 60_000 });
    const reader = taskOf(result.record, "reader");
    expect(reader.status).toBe("FAILED");
    expect([2010, 2013, 2014]).toContain(reader.exit_code);
    expect(reader.reason).toContain("NoSuchBucket");
    expect(home.log(result.record.id, "reader")).toBe("");
  });
});
