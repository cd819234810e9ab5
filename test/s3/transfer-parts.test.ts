/**
 * troupe's own multipart uploads and buffered downloads (src/data/file-upload.ts, file-download.ts) against the
 * real S3 server: files of every shape (empty, exactly one part, one byte over, six parts) go up as one PUT
 * or as parts, come back byte for byte (SHA-256), and no multipart upload is left behind on the store.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DeleteObjectsCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataCredentialFrom, filesUnder, objectStoreDataPlane } from "../../src/data/index.js";
import { attemptServer, clientFor, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/transfer-parts.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-parts-${randomBytes(4).toString("hex")}`;
const MIB = 1024 * 1024;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe.skipIf(!attempt.server)(`multipart uploads and downloads on a real S3 server (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  let dir: string;
  const plane = () =>
    objectStoreDataPlane({
      credentials: () => [
        dataCredentialFrom("parts", {
          endpoint: `s3://${bucket}`,
          region: server.region,
          access_key_id: server.user.accessKeyId,
          access_key: server.user.secretAccessKey,
          override_url: server.endpoint,
        }),
      ],
    });
  const signal = () => new AbortController().signal;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "troupe-parts-"));
  });
  afterAll(async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/` }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    s3.destroy();
    rmSync(dir, { recursive: true, force: true });
    releaseServer(server);
  }, 60_000);

  it("uploads one PUT or parts by size, downloads byte for byte, and leaves no upload open", async () => {
    const out = join(dir, "out");
    const sizes: Record<string, number> = {
      "empty.bin": 0,
      "one-part.bin": 8 * MIB,
      "one-over.bin": 8 * MIB + 1,
      "sub/big.bin": 40 * MIB + 123,
    };
    for (const [name, size] of Object.entries(sizes)) {
      mkdirSync(dirname(join(out, name)), { recursive: true });
      writeFileSync(join(out, name), randomBytes(size));
    }
    const up = await plane().upload([{ url: `s3://${bucket}/${PREFIX}/tree`, dir: out }], signal());
    expect(up).toMatchObject({ files: 4, bytes: Object.values(sizes).reduce((a, b) => a + b) });

    // A multipart object's ETag ends in -N, its number of parts; a single PUT's has no dash.
    const etag = async (name: string) => (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}/tree/${name}` }))).ETag;
    expect(await etag("empty.bin")).not.toContain("-");
    expect(await etag("one-part.bin")).not.toContain("-");
    expect(await etag("one-over.bin")).toMatch(/-2"$/);
    expect(await etag("sub/big.bin")).toMatch(/-6"$/);
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${PREFIX}/` }));
    expect(open.Uploads ?? []).toEqual([]);

    const back = join(dir, "back");
    const down = await plane().download([{ url: `s3://${bucket}/${PREFIX}/tree/`, dir: back }], signal());
    expect(down).toMatchObject({ files: 4, bytes: up.bytes });
    expect(await filesUnder(back)).toEqual(Object.keys(sizes).sort());
    for (const name of Object.keys(sizes)) expect(sha256(join(back, name)), name).toBe(sha256(join(out, name)));

    // One object by its URL.
    const single = join(dir, "single");
    await plane().download([{ url: `s3://${bucket}/${PREFIX}/tree/sub/big.bin`, dir: single }], signal());
    expect(await filesUnder(single)).toEqual(["big.bin"]);
    expect(sha256(join(single, "big.bin"))).toBe(sha256(join(out, "sub/big.bin")));
  }, 120_000);
});
