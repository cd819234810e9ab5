/**
 * `checkpoint:` of real runs against the real S3 server (SeaweedFS on
 * loopback, scripts/s3/up.sh), with the data credential set through
 * `troupe credential`: while the task runs, its checkpoint directory's files
 * that the regex keeps are uploaded every `frequency` (seen in the bucket
 * before the task ends), and once more when its command has ended (the file
 * it wrote last is there afterwards). The directory is wherever the task
 * writes it: a path of its own (a directory of troupe's mounted there), or
 * inside its `{{output}}`. Everything this file writes is under its own
 * prefix of the user bucket.
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, taskOf, TestHome, troupe, type RunTarget } from "../run/helpers.js";
import { attemptServer, clientFor, dataCredentialArgs, emptyPrefix, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/checkpoint-run.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-checkpoint-${randomBytes(4).toString("hex")}`;

describe.skipIf(!attempt.server)(`checkpoint: on a real S3 server (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
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

  const keysUnder = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
  const objectText = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  const cases: Array<{ target: RunTarget; path: string; where: string }> = [
    { target: "netns", path: "/tmp/ckpt", where: "a path of its own (its private /tmp)" },
    { target: "netns", path: '"{{output}}/ckpt"', where: "inside its {{output}}" },
    ...(process.env.CONTAINERS_CONF
      ? [
          { target: "container" as const, path: "/checkpoints/model", where: "a path of its own in the container" },
          { target: "container" as const, path: "/osmo/data/output/ckpt", where: "inside OSMO's output path" },
        ]
      : []),
  ];

  it.each(cases)(
    "uploads the checkpoint every second while the task runs and once more at its end ($target, $where)",
    async ({ target, path }) => {
      const at = `${PREFIX}/${target}-${randomBytes(3).toString("hex")}`;
      const file = home.spec(
        `checkpoint-${target}`,
        `workflow:
  name: checkpoint-${target}
  tasks:
  - name: trainer
    image: alpine:3.18
    command: [sh, -c]
    args:
    - |
      mkdir -p ${path}
      echo '{"step": 1}' > ${path}/step-1.json
      echo not kept > ${path}/scratch.txt
      sleep 8
      echo '{"step": 2}' > ${path}/step-2.json
    checkpoint:
    - path: ${path}
      url: s3://${bucket}/${at}
      frequency: 1s
      regex: '.*\\.json$'
`,
      );
      let ended = false;
      const running = runJson(file, { home: home.home, target, timeoutMs: 120_000 }).finally(() => (ended = true));
      // The first checkpoint is in the bucket while the command still sleeps.
      const deadline = Date.now() + 60_000;
      let seen: string[] = [];
      while (!ended && Date.now() < deadline && seen.length === 0) {
        seen = await keysUnder(`${at}/`);
        if (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(ended, "the run ended before any checkpoint was seen").toBe(false);
      expect(seen).toEqual([`${at}/step-1.json`]);

      const result = await running;
      expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
      expect(taskOf(result.record, "trainer").status).toBe("COMPLETED");
      // The last upload has what the task wrote after the periodic ones; the regex kept out the rest.
      expect(await keysUnder(`${at}/`)).toEqual([`${at}/step-1.json`, `${at}/step-2.json`]);
      expect(await objectText(`${at}/step-2.json`)).toBe('{"step": 2}\n');

      const events = await troupe(["events", result.record.id, "--output", "json"], { home: home.home });
      const reasons = (JSON.parse(events.stdout) as Array<{ reason: string }>).map((e) => e.reason);
      expect(reasons.some((r) => /^checkpoint uploaded: 1 file \(\d+B\) of \S+ to s3:\/\//.test(r))).toBe(true);
      // The last upload is done before the task's end is decided.
      const last = reasons.findIndex((r) => r.startsWith("last checkpoint uploaded: 2 files"));
      expect(last, reasons.join("\n")).toBeGreaterThanOrEqual(0);
      const statuses = JSON.parse(events.stdout) as Array<{ to: string; task?: string }>;
      expect(last).toBeLessThan(statuses.findIndex((e) => e.to === "COMPLETED" && e.task !== undefined));
    },
  );

  it("a checkpoint to a bucket the keys may not write: 2014 with AccessDenied, before the command runs", async () => {
    const denied = `${PREFIX}-denied`;
    const set = await troupe(dataCredentialArgs(server, "denied", `s3://${denied}`), { home: home.home });
    expect(set.code, set.stderr).toBe(0);
    const file = home.spec(
      "checkpoint-denied",
      `workflow:
  name: checkpoint-denied
  tasks:
  - name: trainer
    image: alpine:3.18
    command: [sh, -c, "echo ran"]
    checkpoint:
      path: /tmp/ckpt
      url: s3://${denied}/ckpt
      frequency: 1m
`,
    );
    const result = await runJson(file, { home: home.home, target: "netns", timeoutMs: 60_000 });
    const trainer = taskOf(result.record, "trainer");
    expect(trainer).toMatchObject({ status: "FAILED", exit_code: 2014 });
    expect(home.log(result.record.id, "trainer")).toBe("");
    expect(trainer.reason).toMatch(
      new RegExp(`^data access unauthorized: s3://${denied} with the data credential \`denied\`: AccessDenied`),
    );
  });
});
