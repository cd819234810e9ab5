/**
 * Intermediate storage against the real S3 server (SeaweedFS on loopback,
 * scripts/s3/up.sh): with `troupe run --data-store s3://BUCKET/PREFIX` every
 * task's output goes up to PREFIX/RUN/TASK/RETRY/ when it ends, and its
 * consumers' task inputs come down from there before their group starts, so
 * that tasks that share no disk pass data. The consumer's input is shown to
 * come from the store by removing the producer's directory before the
 * consumer's group starts. A missing bucket fails the producer with OSMO's
 * data exit code and the store's reason; a later workflow's
 * `task: WORKFLOW_ID:TASK` input of such a run is downloaded from the store
 * once this machine's copy is gone; a server pool's `data_store:` does the
 * same for submitted workflows, with the submitter's credential. Everything
 * this file writes is under its own prefix of the user bucket.
 */
import { randomBytes } from "node:crypto";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { startServer } from "../server/helpers.js";
import { attemptServer, clientFor, dataCredentialArgs, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/data-store.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-data-store-${randomBytes(4).toString("hex")}`;

const PASSING = `workflow:
  name: passing
  groups:
  - name: make
    tasks:
    - name: producer
      image: alpine:3.18
      command: [sh, -c, "echo from the producer > {{output}}/x"]
  - name: use
    tasks:
    - name: consumer
      image: alpine:3.18
      command: [sh, -c, "cat {{input:0}}/x"]
      inputs:
      - task: producer
`;

/** Every object under `prefix/`, however many listings that takes (a store of several runs). */
async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    keys.push(...(listed.Contents ?? []).map((o) => o.Key!));
    token = listed.NextContinuationToken;
  } while (token);
  return keys.sort();
}

describe.skipIf(!attempt.server)(`intermediate storage on a real S3 server (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  const store = `s3://${bucket}/${PREFIX}/store`;
  let home: TestHome;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const set = await troupe(dataCredentialArgs(server, "user-bucket", `s3://${bucket}`), { home: home.home });
    expect(set.code, set.stderr).toBe(0);
  }, 200_000);

  afterAll(async () => {
    const keys = await keysUnder(s3, bucket, PREFIX);
    for (let i = 0; i < keys.length; i += 1000)
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
    s3.destroy();
    home?.remove();
    releaseServer(server);
  }, 60_000);

  const objectText = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  it("a two-stage workflow passes its files through the store: uploaded under RUN/TASK/RETRY/, downloaded into the consumer's input (the producer's directory gone meanwhile)", async () => {
    const flags = home.outsideTmp();
    const file = home.spec(
      "through-store",
      `workflow:
  name: through-store
  groups:
  - name: make
    tasks:
    - name: producer
      image: alpine:3.18
      command: [sh, -c, "mkdir -p {{output}}/deep && echo made > {{output}}/data.txt && echo more > {{output}}/deep/more.txt && echo skip > {{output}}/skip.log"]
  - name: pause
    tasks:
    - name: waiter
      image: alpine:3.18
      command: [sh, -c, "for i in $(seq 600); do [ -e ${flags}/removed ] && exit 0; sleep 0.1; done; exit 1"]
      inputs:
      - task: producer
        regex: 'data'
  - name: use
    tasks:
    - name: consumer
      image: alpine:3.18
      command: [sh, -c, "echo input={{input:0}} && cat {{input:0}}/data.txt {{input:0}}/deep/more.txt && ls {{input:1}}"]
      inputs:
      - task: producer
      - task: waiter
`,
    );
    const running = runJson(file, { home: home.home, target: "none", extra: ["--data-store", store], timeoutMs: 120_000 });
    // Once the producer's output is in the store, its directory here is removed: the consumer can have it only from there.
    let producerKeys: string[] = [];
    for (let i = 0; i < 600 && producerKeys.length < 3; i++) {
      producerKeys = (await keysUnder(s3, bucket, `${PREFIX}/store`)).filter((k) => k.includes("/producer/0/"));
      if (producerKeys.length < 3) await new Promise((r) => setTimeout(r, 100));
    }
    const runId = producerKeys[0]?.split("/")[2];
    expect(runId, "the producer's output reached the store").toBeDefined();
    const producerDir = join(home.home, "runs", runId!, "outputs", "producer");
    expect(existsSync(producerDir)).toBe(true);
    rmSync(producerDir, { recursive: true });
    writeFileSync(join(flags, "removed"), "");

    const result = await running;
    expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
    expect(result.record.id).toBe(runId);
    const at = `${PREFIX}/store/${runId}`;
    expect(producerKeys).toEqual([`${at}/producer/0/data.txt`, `${at}/producer/0/deep/more.txt`, `${at}/producer/0/skip.log`]);
    expect(await objectText(`${at}/producer/0/data.txt`)).toBe("made\n");
    // Every task's output goes up, an empty one too (nothing to keep: no object).
    expect((await keysUnder(s3, bucket, at)).filter((k) => !k.includes("/producer/"))).toEqual([]);

    const log = home.log(runId!, "consumer");
    expect(log).toContain("made\nmore\n");
    // Its input is a directory of its own, downloaded, not the producer's.
    expect(log).toMatch(new RegExp(`input=.*/runs/${runId}/inputs/consumer/0/0\\n`));

    const events = await troupe(["events", runId!, "--output", "json"], { home: home.home });
    const list = JSON.parse(events.stdout) as Array<{ from: string; to: string; reason: string; task?: string }>;
    const reasons = list.filter((e) => e.from === e.to).map((e) => `${e.task}: ${e.reason}`);
    expect(reasons).toContainEqual(
      expect.stringMatching(
        new RegExp(`^producer: outputs uploaded: 3 files \\(\\d+B\\) to ${store}/${runId}/producer/0/ in \\d+\\.\\d\\d s$`),
      ),
    );
    // The waiter's input regex keeps only data.txt of the producer's three files.
    expect(reasons).toContainEqual(
      expect.stringMatching(new RegExp(`^waiter: inputs downloaded: 1 file \\(5B\\) from ${store}/${runId}/producer/0/ in `)),
    );
    expect(reasons).toContainEqual(
      expect.stringMatching(
        new RegExp(`^consumer: inputs downloaded: 3 files \\(\\d+B\\) from ${store}/${runId}/producer/0/, ${store}/${runId}/waiter/0/ in `),
      ),
    );
  }, 150_000);

  it.skipIf(!process.env.CONTAINERS_CONF)(
    "in containers: the consumer's input ({{input:0}}, /osmo/data/input/0 there) is the download from the store",
    async () => {
      const result = await runJson(home.spec("store-container", PASSING), {
        home: home.home,
        target: "container",
        extra: ["--data-store", `${store}/containers`],
        timeoutMs: 120_000,
      });
      expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
      const id = result.record.id;
      expect(await keysUnder(s3, bucket, `${PREFIX}/store/containers/${id}`)).toEqual([`${PREFIX}/store/containers/${id}/producer/0/x`]);
      expect(home.log(id, "consumer")).toBe("from the producer\n");
      const events = await troupe(["events", id, "--output", "json"], { home: home.home });
      expect(events.stdout).toContain(`inputs downloaded: 1 file (18B) from ${store}/containers/${id}/producer/0/`);
    },
    150_000,
  );

  it("a store whose bucket does not exist: the producer fails before its command with OSMO's data code and the store's NoSuchBucket", async () => {
    const missing = `${PREFIX}-missing`;
    // With the keys that may use every bucket (the user's are refused AccessDenied wherever they may not go).
    const admin = dataCredentialArgs(server, "missing", `s3://${missing}`, server.admin.secretAccessKey).map((arg) =>
      arg.startsWith("access_key_id=") ? `access_key_id=${server.admin.accessKeyId}` : arg,
    );
    const set = await troupe(admin, { home: home.home });
    expect(set.code, set.stderr).toBe(0);
    const marks = home.outsideTmp();
    const file = home.spec(
      "missing-store",
      `workflow:
  name: missing-store
  tasks:
  - name: producer
    image: alpine:3.18
    command: [sh, -c, "echo ran > ${marks}/ran"]
`,
    );
    const result = await runJson(file, { home: home.home, target: "none", extra: ["--data-store", `s3://${missing}/p`] });
    expect(result.code).toBe(1);
    const producer = taskOf(result.record, "producer");
    expect(producer.status).toBe("FAILED");
    expect([2013, 2014]).toContain(producer.exit_code);
    expect(producer.reason).toContain(`s3://${missing}`);
    expect(producer.reason).toContain("NoSuchBucket");
    expect(producer.start_time).toBeNull();
    expect(existsSync(join(marks, "ran"))).toBe(false);
  }, 120_000);

  it("`task: WORKFLOW_ID:TASK` of a run that used a store comes from the store once this machine's copy is gone", async () => {
    const first = await runJson(
      home.spec(
        "stored-first",
        `workflow:
  name: stored-first
  tasks:
  - name: maker
    image: alpine:3.18
    command: [sh, -c, "echo kept > {{output}}/kept.txt"]
`,
      ),
      { home: home.home, target: "none", extra: ["--data-store", store] },
    );
    expect(first.code, first.stderr).toBe(0);
    const id = first.record.id;
    rmSync(join(home.home, "runs", id, "outputs"), { recursive: true });
    const second = await runJson(
      home.spec(
        "stored-second",
        `workflow:
  name: stored-second
  tasks:
  - name: reader
    image: alpine:3.18
    command: [sh, -c, "cat {{input:0}}/kept.txt"]
    inputs:
    - task: ${id}:maker
`,
      ),
      // No store of its own: the earlier run's is where its output is.
      { home: home.home, target: "none" },
    );
    expect(second.code, second.stderr + JSON.stringify(second.record)).toBe(0);
    expect(home.log(second.record.id, "reader")).toBe("kept\n");

    // A run that used no store, whose copy is gone: refused before it starts, saying so.
    const plain = await runJson(
      home.spec(
        "plain",
        `workflow:\n  name: plain\n  tasks:\n  - name: maker\n    image: alpine:3.18\n    command: [sh, -c, "echo x > {{output}}/x"]\n`,
      ),
      {
        home: home.home,
        target: "none",
      },
    );
    rmSync(join(home.home, "runs", plain.record.id, "outputs"), { recursive: true });
    const refused = await troupe(
      [
        "run",
        home.spec(
          "refused",
          `workflow:\n  name: refused\n  tasks:\n  - name: reader\n    image: alpine:3.18\n    command: [cat, "{{input:0}}/x"]\n    inputs:\n    - task: ${plain.record.id}:maker\n`,
        ),
        "--runtime",
        "host",
      ],
      { home: home.home },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("is no longer there");
  }, 150_000);

  it("a server pool's data_store: a submitted workflow's outputs pass through the store with the submitter's credential", async () => {
    const serverHome = home.outsideTmp();
    const config = join(serverHome, "pools.yaml");
    writeFileSync(config, `pools:\n- name: default\n  runtime: host\n  isolation: none\n  data_store: ${store}/server\n`);
    const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
    expect(created.code, created.stderr).toBe(0);
    const served = await startServer(serverHome, ["--config", config]);
    try {
      const as = (args: string[]) =>
        troupe(args, {
          home: join(serverHome, "client"),
          env: { TROUPE_SERVER: served.url, TROUPE_TOKEN: created.stdout.trim(), XDG_CONFIG_HOME: join(serverHome, "xdg") },
          timeoutMs: 60_000,
        });
      const set = await as(dataCredentialArgs(server, "bucket", `s3://${bucket}`));
      expect(set.code, set.stderr).toBe(0);
      const submitted = await as(["workflow", "submit", home.spec("served", PASSING), "--wait"]);
      expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
      const id = /passing-\d+/.exec(submitted.stdout + submitted.stderr)![0];
      expect(await keysUnder(s3, bucket, `${PREFIX}/store/server/${id}`)).toEqual([`${PREFIX}/store/server/${id}/producer/0/x`]);
      const logs = await as(["workflow", "logs", id, "--task", "consumer"]);
      expect(logs.stdout).toContain("from the producer");
    } finally {
      await served.stop();
    }
  }, 150_000);

  it("--data-store that is not an object store's URL is a usage error naming it (exit 2)", async () => {
    const file = home.spec(
      "bad-store",
      `workflow:\n  name: bad-store\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: [true]\n`,
    );
    const result = await troupe(["run", file, "--runtime", "host", "--data-store", "ftp://host/x"], { home: home.home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("E_DATA_URL");
    expect(result.stderr).toContain("--data-store: `ftp://` is not a scheme troupe can transfer");
  });
});
