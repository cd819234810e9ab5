/**
 * Transfers that lose a connection mid-way, against the real S3 server through a TCP relay on loopback that
 * breaks one connection (test/s3/relay.ts) and counts the bytes it passes: a download continues from the bytes
 * it has (a ranged GET of the same version) instead of starting over, and the file arrives byte-exact; an
 * object replaced between the break and the resume fails the download with a clear error and leaves no file;
 * a multipart upload whose part breaks sends that part again, not the whole file, even past the SDK's own
 * attempts for the part.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dataCredentialFrom, objectStoreDataPlane } from "../../src/data/index.js";
import { DataTransferError } from "../../src/port/index.js";
import { Relay } from "./relay.js";
import { attemptServer, clientFor, emptyPrefix, releaseServer, type S3Server } from "./s3-server.js";

const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/resume.test.ts skipped: ${attempt.reason}`);
const PREFIX = `h-resume-${randomBytes(4).toString("hex")}`;
const MIB = 1024 * 1024;
/** Eight parts of 8 MiB: large enough for a multipart upload and for a break well inside the body. */
const SIZE = 64 * MIB;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe.skipIf(!attempt.server)(`transfers that lose a connection (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;
  const s3 = clientFor(server, server.user);
  const bucket = server.userBucket;
  const data = randomBytes(SIZE);
  let relay: Relay;
  let dir: string;
  /** The data plane as `troupe run` makes it, its store reached through the relay; retries quick. */
  const plane = () =>
    objectStoreDataPlane({
      credentials: () => [
        dataCredentialFrom("resume", {
          endpoint: `s3://${bucket}`,
          region: server.region,
          access_key_id: server.user.accessKeyId,
          access_key: server.user.secretAccessKey,
          override_url: `http://127.0.0.1:${relay.port}`,
        }),
      ],
      retry: { attempts: 3, firstDelayMs: 50 },
    });
  const signal = () => new AbortController().signal;
  const put = (key: string, body: Buffer) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/${key}`, Body: body }));
  const stored = async (key: string) => {
    const answer = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}/${key}` }));
    return Buffer.from(await answer.Body!.transformToByteArray());
  };

  beforeAll(async () => {
    const target = new URL(server.endpoint);
    relay = new Relay({ host: target.hostname, port: Number(target.port) });
    await relay.listen();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "troupe-resume-"));
    relay.passed.toServer = relay.passed.toClient = 0;
    relay.cutToServer = relay.cutToClient = () => false;
    relay.hold = undefined;
    return () => rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await relay?.stop();
    await emptyPrefix(s3, bucket, PREFIX);
    s3.destroy();
    releaseServer(server);
  }, 60_000);

  it("a download whose connection breaks at 3/4 continues from there: byte-exact, well under twice the bytes", async () => {
    await put("big.bin", data);
    let cuts = 0;
    relay.cutToClient = (_piece, passed) => cuts === 0 && passed > (SIZE * 3) / 4 && ++cuts === 1;
    // Where the request after the break asks the object from (its Range).
    let resumedAt: number | undefined;
    relay.cutToServer = (piece) => {
      const range = /\r\nrange: bytes=(\d+)-/i.exec(piece.toString("latin1"));
      if (range && cuts > 0) resumedAt = Number(range[1]);
      return false;
    };
    const report = await plane().download([{ url: `s3://${bucket}/${PREFIX}/big.bin`, dir }], signal());
    expect(cuts).toBe(1);
    expect(report).toMatchObject({ files: 1, bytes: SIZE });
    expect(sha256(readFileSync(join(dir, "big.bin")))).toBe(sha256(data));
    expect(readdirSync(dir)).toEqual(["big.bin"]);
    // From the bytes it had (what the relay passed before the break, less what was still in flight), not from 0.
    expect(resumedAt).toBeGreaterThan(SIZE / 2);
    // Started over, it would have fetched 3/4 of the object twice (1.75 times its size); what was in flight at
    // the break comes twice (up to a few MiB of loopback buffers on a loaded machine: 1.12x was seen).
    expect(relay.passed.toClient).toBeLessThan(SIZE * 1.25);
  }, 120_000);

  it("an object replaced between the break and the resume fails the download clearly, and leaves no file", async () => {
    await put("changing.bin", data);
    let cuts = 0;
    relay.cutToClient = (_piece, passed) => {
      if (cuts > 0 || passed < SIZE / 2) return false;
      cuts++;
      // What the client sends next (its resume) waits until another version of the object is stored.
      relay.hold = put("changing.bin", randomBytes(SIZE));
      return true;
    };
    const error = await plane()
      .download([{ url: `s3://${bucket}/${PREFIX}/changing.bin`, dir }], signal())
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(cuts).toBe(1);
    expect(error).toBeInstanceOf(DataTransferError);
    expect((error as DataTransferError).exitCode).toBe(2010);
    expect((error as DataTransferError).message).toMatch(
      new RegExp(
        `^download of s3://${bucket}/${PREFIX}/changing\\.bin failed: ObjectChanged: the object changed on the store while it was downloaded \\(its ETag was "[^"]+"`,
      ),
    );
    expect(readdirSync(dir)).toEqual([]);
    // Not started again either: the first half, and not much more.
    expect(relay.passed.toClient).toBeLessThan(SIZE * 0.6);
  }, 120_000);

  it("a multipart upload whose connection breaks at 3/4 sends the broken part again, not the file", async () => {
    writeFileSync(join(dir, "big.bin"), data);
    let cuts = 0;
    relay.cutToServer = (_piece, passed) => cuts === 0 && passed > (SIZE * 3) / 4 && ++cuts === 1;
    const report = await plane().upload([{ url: `s3://${bucket}/${PREFIX}/up-once`, dir }], signal());
    expect(cuts).toBe(1);
    expect(report).toMatchObject({ files: 1, bytes: SIZE });
    expect(sha256(await stored("up-once/big.bin"))).toBe(sha256(data));
    // Started over, it would have sent 3/4 of the file twice.
    expect(relay.passed.toServer).toBeLessThan(SIZE * 1.25);
  }, 120_000);

  it("a part whose connection breaks more often than the SDK tries a request is sent again alone, in the same upload", async () => {
    writeFileSync(join(dir, "big.bin"), data);
    let partCuts = 0;
    let uploadsStarted = 0;
    relay.cutToServer = (piece) => {
      const text = piece.toString("latin1");
      if (text.includes("?uploads")) uploadsStarted++;
      // Part 3's request, the first 5 times it starts: past the SDK's 4 attempts for it.
      return /[?&]partNumber=3&/.test(text) && ++partCuts <= 5;
    };
    const report = await plane().upload([{ url: `s3://${bucket}/${PREFIX}/up-part`, dir }], signal());
    expect(partCuts).toBe(6);
    expect(uploadsStarted).toBe(1);
    expect(report).toMatchObject({ files: 1, bytes: SIZE });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}/up-part/big.bin` }));
    expect(head.ETag).toMatch(/-8"$/);
    expect(sha256(await stored("up-part/big.bin"))).toBe(sha256(data));
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${PREFIX}/` }));
    expect(open.Uploads ?? []).toEqual([]);
  }, 120_000);
});
