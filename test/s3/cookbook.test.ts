/**
 * OSMO's data tutorials (its cookbook's tutorials/data_upload.yaml,
 * data_download.yaml and data_filter.yaml, as its user guide's "Working
 * with Data" shows them; written here) run end to end against the real S3
 * server (SeaweedFS on loopback, scripts/s3/up.sh), as a user runs them:
 * the bucket replaced by one of theirs (here, the test's own prefix of the
 * user bucket), as the tutorial asks, a data credential for it set with
 * `troupe credential set`, data_filter's `storage_url` given with `--set`.
 * In containers (ubuntu:24.04, as written) and in the host sandbox.
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, ensureBuilt, runJson, taskOf, TestHome, troupe, type RunTarget } from "../run/helpers.js";
import { attemptServer, clientFor, dataCredentialArgs, emptyPrefix, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/cookbook.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-cookbook-${randomBytes(4).toString("hex")}`;

/** The tutorials, `s3://my-bucket` (data_upload, data_download) and `{{ storage_url }}` (data_filter) as written. */
const DATA_UPLOAD = `workflow:
  name: upload-to-s3

  tasks:
  - name: save-to-cloud
    image: ubuntu:24.04
    command: ["bash", "-c"]
    args:
    - |
      mkdir -p {{output}}/results
      echo "Model checkpoint" > {{output}}/results/model.pth
      echo "Upload complete"

    outputs:
    - url: s3://my-bucket/models/ # (1)
`;

const DATA_DOWNLOAD = `workflow:
  name: download-from-s3

  tasks:
  - name: load-from-cloud
    image: ubuntu:24.04
    command: ["bash", "-c"]
    args:
    - |
      echo "Loading data from S3..."
      ls -la {{input:0}}/ # (1)
      echo "Download complete"

    inputs:
    - url: s3://my-bucket/data/ # (2)
`;

const DATA_FILTER = `# To submit:
#   osmo workflow submit data_filter.yaml --set storage_url=s3://my-bucket

workflow:
  name: filtered-io

  tasks:
  - name: selective-download
    image: ubuntu:24.04
    command: ["bash", "-c"]
    args: ["ls -la {{input:0}}/"]

    inputs:
    - url: {{ storage_url }}/large_dataset/
      regex: .*\\.txt$ # (1)

    outputs:
    - url: {{ storage_url }}/output_dataset/{{workflow_id}}/
      regex: .*\\.(json|yaml)$ # (2)
`;

describe.skipIf(!attempt.server)(`OSMO's data tutorials on a real S3 server (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  /** The user's own place for "my-bucket". */
  const mine = `s3://${bucket}/${PREFIX}`;
  let home: TestHome;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const objects: Array<[string, string]> = [
      ["data/train.csv", "a,b\n"],
      ["data/labels/classes.txt", "cat\ndog\n"],
      ["large_dataset/part-1.txt", "one\n"],
      ["large_dataset/deep/part-2.txt", "two\n"],
      ["large_dataset/meta.json", "{}\n"],
      ["large_dataset/image.png", "not text\n"],
    ];
    for (const [key, body] of objects) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/${key}`, Body: body }));
    const set = await troupe(dataCredentialArgs(server, "my-bucket", `s3://${bucket}`), { home: home.home });
    expect(set.code, set.stderr).toBe(0);
  }, 200_000);

  afterAll(async () => {
    await emptyPrefix(s3, bucket, PREFIX);
    s3.destroy();
    home?.remove();
    releaseServer(server);
  }, 60_000);

  const keysUnder = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/${prefix}` }))).Contents ?? []).map((o) =>
      o.Key!.slice(PREFIX.length + 1),
    );

  const TARGETS: RunTarget[] = process.env.CONTAINERS_CONF ? ["container", "netns"] : ["netns"];

  it.each(TARGETS)(
    "data_upload.yaml: the task's output is in the bucket after it (%s)",
    async (target) => {
      const file = home.spec(`upload-${target}`, DATA_UPLOAD.replace("s3://my-bucket/models/", `${mine}/models-${target}/`));
      const run = await runJson(file, { home: home.home, target, timeoutMs: 120_000 });
      expect(run.code, describeRun(run)).toBe(0);
      expect(home.log(run.record.id, "save-to-cloud")).toBe("Upload complete\n");
      expect(await keysUnder(`models-${target}/`)).toEqual([`models-${target}/results/model.pth`]);
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}/models-${target}/results/model.pth` }));
      expect(await body.Body!.transformToString()).toBe("Model checkpoint\n");
    },
    150_000,
  );

  it.each(TARGETS)(
    "data_download.yaml: the bucket's objects are in {{input:0}} before the command (%s)",
    async (target) => {
      const file = home.spec(`download-${target}`, DATA_DOWNLOAD.replace("s3://my-bucket/data/", `${mine}/data/`));
      const run = await runJson(file, { home: home.home, target, timeoutMs: 120_000 });
      expect(run.code, describeRun(run)).toBe(0);
      const log = home.log(run.record.id, "load-from-cloud");
      expect(log).toMatch(/^Loading data from S3\.\.\.\n/);
      expect(log).toMatch(/ train\.csv\n/);
      expect(log).toMatch(/ labels\n/);
      expect(log).toMatch(/Download complete\n$/);
    },
    150_000,
  );

  it.each(TARGETS)(
    "data_filter.yaml with --set storage_url: only the .txt objects come down (%s)",
    async (target) => {
      const file = home.spec(`filter-${target}`, DATA_FILTER);
      const run = await runJson(file, { home: home.home, target, timeoutMs: 120_000, extra: ["--set", `storage_url=${mine}`] });
      expect(run.code, describeRun(run)).toBe(0);
      expect(taskOf(run.record, "selective-download")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      const log = home.log(run.record.id, "selective-download");
      expect(log).toMatch(/ part-1\.txt\n/);
      expect(log).toMatch(/ deep\n/);
      expect(log).not.toMatch(/meta\.json|image\.png/);
      // Nothing of the output matched .json or .yaml (the task wrote none): nothing uploaded.
      expect(await keysUnder(`output_dataset/${run.record.id}/`)).toEqual([]);
    },
    150_000,
  );
});
