/**
 * What a download whose connection breaks asks for next, seen from an S3
 * endpoint on loopback whose answers the test chooses (real HTTP through the
 * AWS SDK; the real server cannot show the requests, nor misbehave): the
 * rest as a range, If-Match the first answer's ETag; a store that ignores
 * the range, or gives no ETag, makes the download start over rather than
 * append the wrong bytes; an answer of another version (a store that ignores
 * If-Match) stops it. test/s3/resume.test.ts does the same against the real
 * server.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DataTransferError } from "../../src/port/index.js";
import { FakeStore, fakeStorePlane, isHeadBucket } from "./fake-store.js";

const MIB = 1024 * 1024;
const OBJECT = randomBytes(3 * MIB);
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
let store: FakeStore;
let dir: string;

beforeAll(async () => {
  store = await new FakeStore().start();
});
afterAll(() => store.close());
beforeEach(() => {
  store.seen.length = 0;
  dir = mkdtempSync(join(tmpdir(), "troupe-resume-requests-"));
  return () => rmSync(dir, { recursive: true, force: true });
});

const plane = () => fakeStorePlane(store, 2);
const download = () => plane().download([{ url: "s3://b/obj.bin", dir }], new AbortController().signal);

interface Get {
  range: string | undefined;
  ifMatch: string | undefined;
}

/**
 * A store of OBJECT at b/obj.bin whose first GET breaks after 1 MiB; `answer` answers the later ones (the
 * default: as S3 does, a range of the same version). Returns the GETs' Range and If-Match headers, in order.
 */
function breakingStore(etag: string | undefined, answer?: (request: IncomingMessage, response: ServerResponse) => void): Get[] {
  const gets: Get[] = [];
  const tagged = etag ? { etag } : {};
  store.handle = (request, response) => {
    if (isHeadBucket(request)) return response.end();
    if (request.method === "HEAD") return response.writeHead(200, { "content-length": OBJECT.length, ...tagged }).end();
    gets.push({ range: request.headers.range, ifMatch: request.headers["if-match"] });
    if (gets.length === 1) {
      response.writeHead(200, { "content-length": OBJECT.length, ...tagged });
      response.write(OBJECT.subarray(0, MIB), () => response.socket?.resetAndDestroy());
      return;
    }
    if (answer) return answer(request, response);
    const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? "")?.[1] ?? 0);
    if (request.headers.range === undefined) return response.writeHead(200, { "content-length": OBJECT.length, ...tagged }).end(OBJECT);
    response
      .writeHead(206, {
        "content-length": OBJECT.length - from,
        "content-range": `bytes ${from}-${OBJECT.length - 1}/${OBJECT.length}`,
        ...tagged,
      })
      .end(OBJECT.subarray(from));
  };
  return gets;
}

describe("a download whose connection breaks, request by request", () => {
  it("asks for the rest from the first byte it lacks, If-Match the ETag, and joins it byte-exact", async () => {
    const gets = breakingStore('"v1"');
    expect(await download()).toMatchObject({ files: 1, bytes: OBJECT.length });
    expect(sha256(readFileSync(join(dir, "obj.bin")))).toBe(sha256(OBJECT));
    expect(gets).toEqual([
      { range: undefined, ifMatch: undefined },
      { range: expect.stringMatching(/^bytes=\d+-$/) as string, ifMatch: '"v1"' },
    ]);
    // From what had arrived (a socket may lose the last bytes sent before the reset), not past it.
    expect(Number(/\d+/.exec(gets[1]!.range!)![0])).toBeLessThanOrEqual(MIB);
  });

  it("starts over when the store answers the whole object to a range (it ignores ranges)", async () => {
    const gets = breakingStore('"v1"', (_request, response) =>
      response.writeHead(200, { "content-length": OBJECT.length, etag: '"v1"' }).end(OBJECT),
    );
    expect(await download()).toMatchObject({ files: 1, bytes: OBJECT.length });
    expect(sha256(readFileSync(join(dir, "obj.bin")))).toBe(sha256(OBJECT));
    // The range answered whole was not appended: the data layer's second try fetched the object again.
    expect(gets.map((g) => g.range === undefined)).toEqual([true, false, true]);
  });

  it("starts over when the store gave no ETag (a later range could be of another version)", async () => {
    const gets = breakingStore(undefined);
    expect(await download()).toMatchObject({ files: 1, bytes: OBJECT.length });
    expect(sha256(readFileSync(join(dir, "obj.bin")))).toBe(sha256(OBJECT));
    expect(gets).toEqual([
      { range: undefined, ifMatch: undefined },
      { range: undefined, ifMatch: undefined },
    ]);
  });

  it("stops, leaving no file, when the rest is of another version (a store that ignores If-Match)", async () => {
    breakingStore('"v1"', (request, response) => {
      const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? "")![1]);
      response
        .writeHead(206, {
          "content-length": OBJECT.length - from,
          "content-range": `bytes ${from}-${OBJECT.length - 1}/${OBJECT.length}`,
          etag: '"v2"',
        })
        .end(randomBytes(OBJECT.length - from));
    });
    const error = await download().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DataTransferError);
    expect((error as DataTransferError).exitCode).toBe(2010);
    expect((error as DataTransferError).message).toBe(
      'download of s3://b/obj.bin failed: ObjectChanged: the object changed on the store while it was downloaded (its ETag was "v1", now "v2"): the download stops rather than join bytes of two versions; run it again to fetch the new one',
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it("stops on the store's 412 to If-Match (the object was replaced), without trying again", async () => {
    const gets = breakingStore('"v1"', (_request, response) => {
      response.writeHead(412, { "content-type": "application/xml" });
      response.end(
        `<?xml version="1.0"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`,
      );
    });
    const error = await download().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as DataTransferError).message).toMatch(/^download of s3:\/\/b\/obj\.bin failed: ObjectChanged: .*its ETag was "v1"\)/);
    expect(gets).toHaveLength(2);
    expect(readdirSync(dir)).toEqual([]);
  });
});
