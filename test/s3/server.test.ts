/**
 * The real S3 test server (scripts/s3/up.sh: SeaweedFS) through the official AWS SDK for JavaScript, doing
 * what troupe's data plane will need (issue 15): buckets, objects, multipart uploads with parallel parts,
 * listing by prefix in pages, streamed downloads, the errors it gives for wrong credentials, a bucket or key
 * that does not exist and an identity without rights, and what the SDK does when the server goes away.
 * Times measured go to stdout (docs/s3-notes.md).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { afterAll, describe, expect, it } from "vitest";
import { Relay } from "./relay.js";
import { attemptServer, clientFor, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/server.test.ts skipped: ${attempt.reason}`);
const timings: Record<string, string> = {};
const ms = (since: bigint) => Number((process.hrtime.bigint() - since) / 1_000_000n);
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const MB = 1 << 20;

/** The error an SDK call rejects with (fails the test if it resolves). */
async function failure(call: Promise<unknown>): Promise<S3ServiceException & { code?: string }> {
  try {
    await call;
  } catch (error) {
    return error as S3ServiceException & { code?: string };
  }
  throw new Error("the call succeeded; an error was expected");
}

describe.skipIf(!attempt.server)(`a real S3 server through @aws-sdk/client-s3 (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const admin = clientFor(server, server.admin);
  const user = clientFor(server, server.user);
  const bucket = `troupe-test-${process.pid}-${Date.now().toString(36)}`;
  const work = mkdtempSync(join(tmpdir(), "troupe-s3-"));
  const big = randomBytes(20 * MB + 12_345);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    console.log(`S3 timings: ${JSON.stringify(timings)}`);
    releaseServer(server);
  });

  it("creates a bucket, puts an object and gets it back", async () => {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    const put = await admin.send(
      new PutObjectCommand({ Bucket: bucket, Key: "hello.txt", Body: "hello, troupe\n", ContentType: "text/plain" }),
    );
    // A single PUT's ETag is the body's MD5 in quotes, as on AWS.
    expect(put.ETag).toBe(`"${createHash("md5").update("hello, troupe\n").digest("hex")}"`);
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" }));
    expect(await got.Body!.transformToString()).toBe("hello, troupe\n");
    expect(got.ContentType).toBe("text/plain");
    expect(got.ContentLength).toBe(14);
  });

  it("uploads 20 MB in parallel parts (lib-storage Upload) and reads it back byte for byte", async () => {
    const started = process.hrtime.bigint();
    const parts: number[] = [];
    const upload = new Upload({
      client: admin,
      params: { Bucket: bucket, Key: "big/blob.bin", Body: Readable.from(chunks(big, 256 * 1024)) },
      partSize: 5 * MB,
      queueSize: 4,
    });
    upload.on("httpUploadProgress", (progress) => progress.part !== undefined && parts.push(progress.part));
    const done = await upload.done();
    timings.upload20MB = `${ms(started)} ms`;
    expect(new Set(parts).size).toBe(5); // 4 parts of 5 MB and the rest
    // A multipart object's ETag is MD5-of-part-MD5s and the part count, as on AWS.
    expect(done.ETag).toMatch(/^"[0-9a-f]{32}-5"$/);
    const readStarted = process.hrtime.bigint();
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: "big/blob.bin" }));
    const back = Buffer.from(await got.Body!.transformToByteArray());
    timings.download20MBToMemory = `${ms(readStarted)} ms`;
    expect(back.length).toBe(big.length);
    expect(sha256(back)).toBe(sha256(big));
  });

  it("streams a download to a file", async () => {
    const started = process.hrtime.bigint();
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: "big/blob.bin" }));
    const file = join(work, "blob.bin");
    await pipeline(got.Body as Readable, createWriteStream(file));
    timings.download20MBToFile = `${ms(started)} ms`;
    expect(statSync(file).size).toBe(big.length);
    const hash = createHash("sha256");
    await pipeline(createReadStream(file), hash);
    expect(hash.digest("hex")).toBe(sha256(big));
  });

  it("accepts the SDK's default checksums (CRC32 trailers) and returns them, composite for multipart", async () => {
    const defaults = clientFor(server, server.admin, {
      requestChecksumCalculation: "WHEN_SUPPORTED",
      responseChecksumValidation: "WHEN_SUPPORTED",
    });
    const put = await defaults.send(new PutObjectCommand({ Bucket: bucket, Key: "crc/hello", Body: "hello" }));
    expect(put.ChecksumCRC32).toBe("NhCmhg==");
    const got = await defaults.send(new GetObjectCommand({ Bucket: bucket, Key: "crc/hello", ChecksumMode: "ENABLED" }));
    expect([got.ChecksumCRC32, await got.Body!.transformToString()]).toEqual(["NhCmhg==", "hello"]);
    const done = await new Upload({
      client: defaults,
      params: { Bucket: bucket, Key: "crc/multi", Body: big.subarray(0, 12 * MB) },
      partSize: 5 * MB,
    }).done();
    expect(done.ChecksumCRC32).toMatch(/^[A-Za-z0-9+/]{6}==-3$/);
    // The region is not checked: a signature for any region is accepted (AWS would answer a redirect).
    const elsewhere = clientFor(server, server.admin, { region: "eu-west-3" });
    expect(await (await elsewhere.send(new GetObjectCommand({ Bucket: bucket, Key: "crc/hello" }))).Body!.transformToString()).toBe(
      "hello",
    );
  });

  it("lists by prefix in pages (MaxKeys, continuation tokens)", async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `list/a/${String(i).padStart(3, "0")}.txt`);
    await Promise.all(
      [...keys, "list/b/other.txt", "list/a-sibling.txt"].map((Key) =>
        admin.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key })),
      ),
    );
    const pages: string[][] = [];
    for await (const page of paginateListObjectsV2({ client: admin, pageSize: 10 }, { Bucket: bucket, Prefix: "list/a/" })) {
      pages.push((page.Contents ?? []).map((object) => object.Key!));
    }
    expect(pages.map((page) => page.length)).toEqual([10, 10, 3]);
    expect(pages.flat()).toEqual(keys);
    // By hand: the first page says it is truncated and gives a token; a delimiter folds "directories".
    const first = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "list/a/", MaxKeys: 10 }));
    expect(first.IsTruncated).toBe(true);
    expect(first.NextContinuationToken).toBeTruthy();
    const folded = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "list/", Delimiter: "/" }));
    expect((folded.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(["list/a/", "list/b/"]);
    expect((folded.Contents ?? []).map((o) => o.Key)).toEqual(["list/a-sibling.txt"]);
  });

  it("lets the restricted identity use its bucket and refuses it another (AccessDenied, 403)", async () => {
    await user.send(new PutObjectCommand({ Bucket: server.userBucket, Key: `mine-${process.pid}.txt`, Body: "mine" }));
    const got = await user.send(new GetObjectCommand({ Bucket: server.userBucket, Key: `mine-${process.pid}.txt` }));
    expect(await got.Body!.transformToString()).toBe("mine");
    const refusedCreate = await failure(user.send(new CreateBucketCommand({ Bucket: `${bucket}-user` })));
    expect([refusedCreate.name, refusedCreate.$metadata.httpStatusCode]).toEqual(["AccessDenied", 403]);
    // Even where the bucket does not exist: the identity may not learn whether another bucket exists.
    const refusedMissing = await failure(user.send(new PutObjectCommand({ Bucket: "troupe-no-such-bucket", Key: "x", Body: "x" })));
    expect([refusedMissing.name, refusedMissing.$metadata.httpStatusCode]).toEqual(["AccessDenied", 403]);
    const refusedPut = await failure(user.send(new PutObjectCommand({ Bucket: bucket, Key: "theirs.txt", Body: "no" })));
    expect([refusedPut.name, refusedPut.$metadata.httpStatusCode]).toEqual(["AccessDenied", 403]);
    const refusedGet = await failure(user.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" })));
    expect([refusedGet.name, refusedGet.$metadata.httpStatusCode]).toEqual(["AccessDenied", 403]);
    const refusedList = await failure(user.send(new ListObjectsV2Command({ Bucket: bucket })));
    expect([refusedList.name, refusedList.$metadata.httpStatusCode]).toEqual(["AccessDenied", 403]);
  });

  it("refuses a wrong secret key (SignatureDoesNotMatch) and an unknown access key (InvalidAccessKeyId)", async () => {
    const wrongSecret = clientFor(server, {
      accessKeyId: server.admin.accessKeyId,
      secretAccessKey: "not-the-secret-key-at-all-0123456789abcd",
    });
    const e1 = await failure(wrongSecret.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" })));
    expect([e1.name, e1.$metadata.httpStatusCode]).toEqual(["SignatureDoesNotMatch", 403]);
    const unknownKey = clientFor(server, { accessKeyId: "TRNOSUCHKEY000000000", secretAccessKey: server.admin.secretAccessKey });
    const e2 = await failure(unknownKey.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" })));
    expect([e2.name, e2.$metadata.httpStatusCode]).toEqual(["InvalidAccessKeyId", 403]);
    // Neither is retried: an authorisation error is final.
    expect([e1.$metadata.attempts, e2.$metadata.attempts]).toEqual([1, 1]);
  });

  it("names a missing bucket (NoSuchBucket) and a missing key (NoSuchKey); HEAD has no body, so only NotFound", async () => {
    const noBucket = await failure(admin.send(new GetObjectCommand({ Bucket: "troupe-no-such-bucket", Key: "x" })));
    expect([noBucket.name, noBucket.$metadata.httpStatusCode]).toEqual(["NoSuchBucket", 404]);
    const noBucketList = await failure(admin.send(new ListObjectsV2Command({ Bucket: "troupe-no-such-bucket" })));
    expect([noBucketList.name, noBucketList.$metadata.httpStatusCode]).toEqual(["NoSuchBucket", 404]);
    // Uploads too (SeaweedFS would make the bucket for an admin; up.sh turns that off, as AWS behaves).
    const noBucketPut = await failure(admin.send(new PutObjectCommand({ Bucket: "troupe-no-such-bucket", Key: "x", Body: "x" })));
    expect([noBucketPut.name, noBucketPut.$metadata.httpStatusCode]).toEqual(["NoSuchBucket", 404]);
    const noKey = await failure(admin.send(new GetObjectCommand({ Bucket: bucket, Key: "no/such/key" })));
    expect([noKey.name, noKey.$metadata.httpStatusCode]).toEqual(["NoSuchKey", 404]);
    const noKeyHead = await failure(admin.send(new HeadObjectCommand({ Bucket: bucket, Key: "no/such/key" })));
    expect([noKeyHead.name, noKeyHead.$metadata.httpStatusCode]).toEqual(["NotFound", 404]);
  });

  it("says a bucket exists (BucketAlreadyOwnedByYou) and is not empty (BucketNotEmpty)", async () => {
    const again = await failure(admin.send(new CreateBucketCommand({ Bucket: bucket })));
    expect([again.name, again.$metadata.httpStatusCode]).toEqual(["BucketAlreadyOwnedByYou", 409]);
    const notEmpty = await failure(admin.send(new DeleteBucketCommand({ Bucket: bucket })));
    expect([notEmpty.name, notEmpty.$metadata.httpStatusCode]).toEqual(["BucketNotEmpty", 409]);
  });

  it("retries a request whose connection the server dropped, and gives up after maxAttempts when it stays away", async () => {
    const target = new URL(server.endpoint);
    const relay = new Relay({ host: target.hostname, port: Number(target.port) });
    await relay.listen();
    const through = (overrides = {}) => clientFor(server, server.admin, { endpoint: `http://127.0.0.1:${relay.port}`, ...overrides });
    const body = randomBytes(2 * MB);
    try {
      // The first connection is dropped once 256 KB of the upload arrived; the server is back for the retry.
      relay.dropWhen = (connection, received) => connection === 1 && received > 256 * 1024;
      let started = process.hrtime.bigint();
      const retried = await through().send(new PutObjectCommand({ Bucket: bucket, Key: "retried.bin", Body: body }));
      timings.putRetriedAfterDrop = `${ms(started)} ms`;
      expect(retried.$metadata.attempts).toBe(2);
      const back = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: "retried.bin" }));
      expect(sha256(Buffer.from(await back.Body!.transformToByteArray()))).toBe(sha256(body));

      // Now the server stops mid-request and does not come back: the SDK tries maxAttempts times, then rejects.
      relay.dropWhen = (_connection, received) => {
        if (received > 256 * 1024) void relay.stop();
        return false;
      };
      started = process.hrtime.bigint();
      const gone = await failure(through({ maxAttempts: 3 }).send(new PutObjectCommand({ Bucket: bucket, Key: "gone.bin", Body: body })));
      const elapsed = ms(started);
      timings.putServerGone3Attempts = `${elapsed} ms (${gone.name}: ${gone.message}; attempts ${gone.$metadata?.attempts}, delay ${gone.$metadata?.totalRetryDelay} ms)`;
      expect(gone.$metadata?.attempts).toBe(3);
      expect(gone.code ?? gone.name).toMatch(/ECONNREFUSED|ECONNRESET|EPIPE/);
      expect(elapsed).toBeLessThan(25_000); // the standard strategy's backoff: up to 20 s each, jittered, usually far less
    } finally {
      await relay.stop();
    }
  });
});

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}
