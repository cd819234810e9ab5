/**
 * `url:` data on the Slurm test cluster: a member on a node gets its input
 * URL's objects (downloaded by troupe into the run's directory, which the
 * nodes see at the same path) and its output reaches the real S3 server.
 * Run under the cluster's lock (flock /var/tmp/troupe-slurm-dev.lock).
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attemptServer, clientFor, emptyPrefix, releaseServer, type S3Server } from "../s3/s3-server.js";
import { ensureBuilt, killStartedRuns, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { attemptCluster, lockCluster, type SlurmCluster } from "./slurm-cluster.js";

const cluster = attemptCluster();
const store = cluster.cluster ? attemptServer() : { reason: "no cluster" };
const skip = cluster.reason ?? store.reason;
if (skip) console.warn(`test/slurm/data.test.ts skipped: ${skip}`);
const PREFIX = `h-data-slurm-${randomBytes(4).toString("hex")}`;

describe.skipIf(skip !== undefined)(`url: data on Slurm (${skip ?? "the test cluster and S3 server"})`, () => {
  // The test files' lock on the cluster, shared: a test of another file that kills a slurmd or drains a node waits.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(cluster.cluster!, "shared");
  }, 30 * 60_000);
  afterAll(() => release?.());
  const slurmCluster = cluster.cluster as SlurmCluster;
  const server = (store as { server: S3Server }).server;
  const s3 = server && clientFor(server, server.user);
  let home: TestHome;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    await s3.send(new PutObjectCommand({ Bucket: server.userBucket, Key: `${PREFIX}/in/x.txt`, Body: "from the store\n" }));
    const set = await troupe(
      [
        "credential",
        "set",
        "user",
        "--type",
        "data",
        "--payload",
        `endpoint=s3://${server.userBucket}`,
        `access_key_id=${server.user.accessKeyId}`,
        `access_key=${server.user.secretAccessKey}`,
        `override_url=${server.endpoint}`,
      ],
      { home: home.home },
    );
    expect(set.code, set.stderr).toBe(0);
  }, 200_000);
  afterAll(async () => {
    killStartedRuns();
    await emptyPrefix(s3, server.userBucket, PREFIX);
    s3.destroy();
    releaseServer(server);
    home?.remove();
  });

  it("a member on a node reads its downloaded input and its output is uploaded", async () => {
    const file = home.spec(
      "slurm-data",
      `workflow:
  name: slurm-data
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "hostname > {{output}}/node && cat {{input:0}}/x.txt >> {{output}}/node"]
    inputs:
    - url: s3://${server.userBucket}/${PREFIX}/in
    outputs:
    - url: s3://${server.userBucket}/${PREFIX}/out
`,
    );
    const env = { SLURM_CONF: slurmCluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: slurmCluster.shared, TROUPE_RUNTIME: undefined };
    const result = await runJson(file, {
      home: home.home,
      env,
      extra: ["--runtime", "slurm", "--listen-address", slurmCluster.loginAddress],
      timeoutMs: 90_000,
    });
    expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
    expect(taskOf(result.record, "t").status).toBe("COMPLETED");
    const body = await (
      await s3.send(new GetObjectCommand({ Bucket: server.userBucket, Key: `${PREFIX}/out/node` }))
    ).Body!.transformToString();
    expect(body).toMatch(/^n\d\nfrom the store\n$/);
  });

  it.each([
    ["troupe's sandbox", []],
    ["podman", ["--node-engine", "podman"]],
  ])(
    "a checkpoint directory of a member on a node (%s) is uploaded while it runs and at its end; in a container its output is OSMO's",
    async (_, engine) => {
      const at = `${PREFIX}/ckpt-${engine.length}`;
      const file = home.spec(
        "slurm-ckpt",
        `workflow:
  name: slurm-ckpt
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "mkdir -p /tmp/ck; echo 1 > /tmp/ck/a.json; echo out={{output}}; sleep 3; echo 2 > /tmp/ck/b.json"]
    checkpoint:
    - {path: /tmp/ck, url: "s3://${server.userBucket}/${at}", frequency: 1s}
`,
      );
      const env = { SLURM_CONF: slurmCluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: slurmCluster.shared, TROUPE_RUNTIME: undefined };
      const result = await runJson(file, {
        home: home.home,
        env,
        extra: ["--runtime", "slurm", "--listen-address", slurmCluster.loginAddress, ...engine],
        timeoutMs: 120_000,
      });
      expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: server.userBucket, Prefix: `${at}/` }));
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([`${at}/a.json`, `${at}/b.json`]);
      const events = await troupe(["events", result.record.id, "--output", "json"], { home: home.home });
      const reasons = (JSON.parse(events.stdout) as Array<{ reason: string }>).map((e) => e.reason);
      expect(reasons.some((r) => r.startsWith("checkpoint uploaded: 1 file"))).toBe(true);
      expect(reasons.some((r) => r.startsWith("last checkpoint uploaded: 2 files"))).toBe(true);
      const output = engine.length > 0 ? "/osmo/data/output" : "";
      if (output) expect(home.log(result.record.id, "t")).toBe(`out=${output}\n`);
    },
  );
});
