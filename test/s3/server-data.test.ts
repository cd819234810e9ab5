/**
 * `url:` data of a troupe server's runs against the real S3 server
 * (SeaweedFS on loopback, scripts/s3/up.sh): a run moves its data with its
 * owner's DATA credential, set through the client on the server (alice's run
 * downloads and uploads with hers); another user's run of the same URLs does
 * not get hers (bob without one: 2014, no credential; bob with wrong keys of
 * his own: 2014, the store's refusal); and a run resumed by a restarted server
 * (SIGKILLed while its first group ran) still uploads its later group's
 * output with its owner's credential. The store's secret key is in no file of
 * the server's home nor its log. Everything is under this file's own prefix
 * of the user bucket.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, sleepMarkers, TestHome, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { attemptServer, clientFor, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/server-data.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-server-data-${randomBytes(4).toString("hex")}`;

interface TaskRecord {
  name: string;
  status: string;
  exit_code: number | null;
  reason: string | null;
}
interface WorkflowRecord {
  status: string;
  groups: Array<{ tasks: TaskRecord[] }>;
}

describe.skipIf(!attempt.server)(`a server's url: data, with its owner's credentials (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const s3server = attempt.server as S3Server;
  const s3 = clientFor(s3server, s3server.user);
  const bucket = s3server.userBucket;
  const sleepers = sleepMarkers(15);
  let home: TestHome;
  let serverHome: string;
  let server: StartedServer | undefined;
  const tokens: Record<string, string> = {};

  const as = (user: string, args: string[], timeoutMs = 60_000) =>
    troupe(args, {
      home: path.join(home.home, `client-${user}`),
      env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: tokens[user], XDG_CONFIG_HOME: path.join(home.home, "xdg") },
      timeoutMs,
    });

  const setData = async (user: string, secret: string) => {
    const set = await as(user, [
      "credential",
      "set",
      "bucket",
      "--type",
      "data",
      "--payload",
      `endpoint=s3://${bucket}`,
      `region=${s3server.region}`,
      `access_key_id=${s3server.user.accessKeyId}`,
      `access_key=${secret}`,
      `override_url=${s3server.endpoint}`,
    ]);
    expect(set.code, set.stderr).toBe(0);
  };

  async function submit(user: string, name: string, spec: string): Promise<string> {
    const submitted = await as(user, ["workflow", "submit", home.spec(name, spec)]);
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
    return new RegExp(`${name}-\\d+`).exec(submitted.stdout + submitted.stderr)![0];
  }

  async function ended(user: string, id: string, ms = 90_000): Promise<WorkflowRecord> {
    for (const deadline = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, 200))) {
      const query = await as(user, ["workflow", "query", id, "--output", "json"]);
      const record = JSON.parse(query.stdout) as WorkflowRecord;
      if (!/RUNNING|PENDING|WAITING/.test(record.status) || Date.now() > deadline) return record;
    }
  }

  const tasks = (record: WorkflowRecord) => record.groups.flatMap((g) => g.tasks);
  const objectText = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  const copySpec = (name: string, out: string) => `workflow:
  name: ${name}
  tasks:
  - name: copy
    image: alpine:3.18
    command: [sh, -c, "cp {{input:0}}/in.txt {{output}}/copied.txt"]
    inputs:
    - url: s3://${bucket}/${PREFIX}/in
    outputs:
    - url: s3://${bucket}/${PREFIX}/${out}
`;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    serverHome = home.outsideTmp();
    for (const user of ["alice", "bob"]) {
      const created = await troupe(["server", "token", "create", user, "--home", serverHome], { home: home.home });
      expect(created.code, created.stderr).toBe(0);
      tokens[user] = created.stdout.trim();
    }
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/in/in.txt`, Body: "from the store\n" }));
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
    await setData("alice", s3server.user.secretAccessKey);
  }, 200_000);

  afterAll(async () => {
    await server?.stop();
    sleepers.killAll();
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/` }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    s3.destroy();
    home?.remove();
    releaseServer(s3server);
  }, 60_000);

  it("a run downloads and uploads with its owner's data credential", async () => {
    const id = await submit("alice", "alice-copy", copySpec("alice-copy", "alice"));
    const record = await ended("alice", id);
    expect(record.status, JSON.stringify(record)).toBe("COMPLETED");
    expect(await objectText(`${PREFIX}/alice/copied.txt`)).toBe("from the store\n");
    const events = await as("alice", ["workflow", "events", id, "--output", "json"]);
    expect(events.stdout).toMatch(/outputs uploaded: 1 files? \(15B\) to s3:\/\//);
  });

  it("another user's run does not get her credential: none of his own is 2014, wrong keys of his own are 2014 with the store's reason", async () => {
    const none = await ended("bob", await submit("bob", "bob-none", copySpec("bob-none", "bob-none")));
    expect(tasks(none)[0]).toMatchObject({ status: "FAILED", exit_code: 2014 });
    expect(tasks(none)[0]!.reason).toContain(`no data credential covers s3://${bucket}`);
    await setData("bob", "bob-wrong-secret-key-0123456789");
    const wrong = await ended("bob", await submit("bob", "bob-wrong", copySpec("bob-wrong", "bob-wrong")));
    expect(tasks(wrong)[0]).toMatchObject({ status: "FAILED", exit_code: 2014 });
    expect(tasks(wrong)[0]!.reason).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/bob` }));
    expect(listed.Contents ?? []).toEqual([]);
  });

  it("a run resumed by a restarted server uploads its later group's output with its owner's credential", async () => {
    const marker = sleepers.sleep(4);
    const id = await submit(
      "alice",
      "alice-resume",
      `workflow:
  name: alice-resume
  groups:
  - name: first
    tasks:
    - name: wait
      image: alpine:3.18
      command: [sh, -c, "sleep ${marker} && echo waited > {{output}}/w.txt"]
  - name: second
    tasks:
    - name: upload
      image: alpine:3.18
      command: [sh, -c, "cat {{input:0}}/w.txt > {{output}}/after-resume.txt"]
      inputs:
      - task: wait
      outputs:
      - url: s3://${bucket}/${PREFIX}/resumed
`,
    );
    // Once the first group runs, the server dies at once; its task runs on under its keeper.
    for (let i = 0; i < 100; i++) {
      const record = JSON.parse((await as("alice", ["workflow", "query", id, "--output", "json"])).stdout) as WorkflowRecord;
      if (tasks(record)[0]!.status === "RUNNING") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const exited = new Promise((resolve) => server!.child.once("exit", resolve));
    server!.child.kill("SIGKILL");
    await exited;
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
    const record = await ended("alice", id);
    expect(record.status, JSON.stringify(record)).toBe("COMPLETED");
    expect(await objectText(`${PREFIX}/resumed/after-resume.txt`)).toBe("waited\n");
    const events = (await as("alice", ["workflow", "events", id])).stdout;
    expect(events).toContain("the server restarted: run resumed");
  });

  it("the store's keys are in no file of the server's home, its log included", () => {
    // The key id too: troupe masks it as a secret, as OSMO does.
    for (const secret of [s3server.user.secretAccessKey, s3server.user.accessKeyId])
      for (const entry of fs.readdirSync(serverHome, { withFileTypes: true, recursive: true })) {
        if (!entry.isFile() || entry.name === "credential.key") continue;
        const file = path.join(entry.parentPath, entry.name);
        expect(fs.readFileSync(file).includes(Buffer.from(secret)), file).toBe(false);
      }
  });
});
