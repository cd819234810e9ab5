/**
 * What troupe's multipart uploads and ranged downloads send, seen from an S3
 * endpoint on loopback whose answers the test chooses (real HTTP through the
 * AWS SDK; the real server cannot show the requests, nor fail one part):
 * a part the store refuses aborts the whole upload (its parts do not stay on
 * the store). Part sizes are pinned in decide.test.ts.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DataTransferError } from "../../src/port/index.js";
import { FakeStore, fakeStorePlane, isHeadBucket, xmlError } from "./fake-store.js";

const MIB = 1024 * 1024;
let store: FakeStore;
let dir: string;

beforeAll(async () => {
  store = await new FakeStore().start();
});
afterAll(() => store.close());
beforeEach(() => {
  store.seen.length = 0;
  dir = mkdtempSync(join(tmpdir(), "troupe-parts-"));
  return () => rmSync(dir, { recursive: true, force: true });
});

const plane = () => fakeStorePlane(store, 1);
const signal = () => new AbortController().signal;

describe("multipart uploads, request by request", () => {
  it("aborts a multipart upload whose part the store refuses, and fails with 2012 and the store's reason", async () => {
    store.handle = (request, response) => {
      const url = request.url ?? "";
      if (isHeadBucket(request)) return response.end();
      if (request.method === "POST" && url.includes("uploads"))
        return response
          .writeHead(200, { "content-type": "application/xml" })
          .end(
            `<?xml version="1.0"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>out/big.bin</Key><UploadId>U1</UploadId></InitiateMultipartUploadResult>`,
          );
      if (request.method === "PUT" && url.includes("partNumber=2")) return xmlError(response, 400, "InvalidPart", "part 2 is not wanted");
      if (request.method === "PUT") return response.writeHead(200, { etag: '"p"' }).end();
      if (request.method === "DELETE") return response.writeHead(204).end();
      xmlError(response, 400, "Unexpected", `${request.method} ${url}`);
    };
    writeFileSync(join(dir, "big.bin"), randomBytes(20 * MIB));
    const error = await plane()
      .upload([{ url: "s3://b/out", dir }], signal())
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(DataTransferError);
    expect((error as DataTransferError).exitCode).toBe(2012);
    expect((error as DataTransferError).message).toContain("InvalidPart (HTTP 400): part 2 is not wanted");
    expect(store.seen.some((s) => s.startsWith("DELETE /b/out/big.bin?uploadId=U1"))).toBe(true);
    expect(store.seen.some((s) => s.startsWith("POST /b/out/big.bin?uploads"))).toBe(true);
    expect(store.seen.some((s) => s.includes("CompleteMultipartUpload") || (s.startsWith("POST") && s.includes("uploadId")))).toBe(false);
  });
});
