/**
 * The data plane (src/data/) against an S3 endpoint on loopback that fails
 * as stores do: real HTTP through the AWS SDK, each answer chosen by the
 * test. Transient failures are retried (and then succeed), lasting ones end
 * with OSMO's code for the direction and the store's reason, an object key
 * that would leave the input directory is refused, a refused check is
 * "unauthorized" with the store's own reason, and a stop aborts a transfer
 * that hangs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dataCredentialFrom, objectStoreDataPlane } from "../../src/data/index.js";
import { DataTransferError, type DataPlane } from "../../src/port/index.js";
import { FakeStore, isHeadBucket, listing, xmlError } from "./fake-store.js";

let store: FakeStore;
let dir: string;
const seen = () => store.seen;

beforeAll(async () => {
  store = await new FakeStore().start();
});
afterAll(() => store.close());
beforeEach(() => {
  store.seen.length = 0;
  dir = mkdtempSync(join(tmpdir(), "troupe-data-plane-"));
  return () => rmSync(dir, { recursive: true, force: true });
});

function plane(): DataPlane {
  const credential = dataCredentialFrom("fake", {
    endpoint: "s3://b",
    access_key_id: "id",
    access_key: "key",
    override_url: store.url,
  });
  return objectStoreDataPlane({ credentials: () => [credential], retry: { attempts: 2, firstDelayMs: 10 } });
}

async function failure(call: Promise<unknown>): Promise<DataTransferError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(DataTransferError);
    return error as DataTransferError;
  }
  throw new Error("the transfer succeeded; a failure was expected");
}

const signal = () => new AbortController().signal;

describe("the data plane against a store that fails", () => {
  it("retries an upload the store fails transiently, then succeeds", async () => {
    let puts = 0;
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.method === "PUT" && ++puts <= 2) return xmlError(response, 503, "SlowDown", "please slow down");
      response.writeHead(200, { etag: '"e"' }).end();
    };
    writeFileSync(join(dir, "model.bin"), "weights");
    const report = await plane().upload([{ url: "s3://b/out", dir }], signal());
    expect(report).toMatchObject({ files: 1, bytes: 7 });
    expect(puts).toBe(3);
    expect(
      seen()
        .filter((s) => s.startsWith("PUT"))
        .every((s) => s.startsWith("PUT /b/out/model.bin")),
    ).toBe(true);
  });

  it("ends an upload the store keeps failing with 2012 and the store's reason, after retrying it", async () => {
    store.handle = (request, response) =>
      isHeadBucket(request) ? response.end() : xmlError(response, 500, "InternalError", "disk on fire");
    writeFileSync(join(dir, "a.csv"), "1");
    const error = await failure(plane().upload([{ url: "s3://b/out", dir }], signal()));
    expect(error.exitCode).toBe(2012);
    expect(error.message).toBe("upload of a.csv to s3://b/out/a.csv failed: InternalError (HTTP 500): disk on fire");
    // The SDK's attempts (4) for each of the data layer's tries (2).
    expect(seen().filter((s) => s.startsWith("PUT")).length).toBe(8);
  });

  it("ends a download the store keeps failing with 2010", async () => {
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.url!.includes("list-type=2")) return listing(response, [["in/a.csv", "1,2"]]);
      if (request.method === "HEAD") return xmlError(response, 404, "NotFound", "");
      xmlError(response, 500, "InternalError", "cannot read");
    };
    const error = await failure(plane().download([{ url: "s3://b/in", dir }], signal()));
    expect(error.exitCode).toBe(2010);
    expect(error.message).toBe("download of s3://b/in/a.csv failed: InternalError (HTTP 500): cannot read");
  });

  it("refuses an object key that would be written outside the input directory", async () => {
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.url!.includes("list-type=2"))
        return listing(response, [
          ["in/ok.txt", "x"],
          ["in/../../escape.txt", "x"],
        ]);
      if (request.method === "HEAD") return xmlError(response, 404, "NotFound", "");
      response.end("x");
    };
    const error = await failure(plane().download([{ url: "s3://b/in/", dir }], signal()));
    expect(error.exitCode).toBe(2010);
    expect(error.message).toContain("object key `in/../../escape.txt` cannot be a file under the input directory");
    expect(existsSync(join(dir, "..", "escape.txt"))).toBe(false);
  });

  it("downloads one object when the URL names it, and every object under it otherwise, filtered by the regex from the start of the path", async () => {
    const objects: Record<string, string> = { "in/a.csv": "a", "in/sub/b.csv": "b", "in/c.txt": "c", "single.bin": "s" };
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.url!.includes("list-type=2"))
        return listing(
          response,
          Object.entries(objects).filter(([k]) => k.startsWith("in/")),
        );
      const key = decodeURIComponent(new URL(request.url!, "http://store").pathname.slice("/b/".length));
      if (objects[key] === undefined) return xmlError(response, 404, "NoSuchKey", "no such key");
      response.writeHead(200, { "content-length": objects[key].length }).end(request.method === "HEAD" ? undefined : objects[key]);
    };
    const report = await plane().download(
      [
        { url: "s3://b/in", regex: "sub/|a", dir: join(dir, "0") },
        { url: "s3://b/single.bin", dir: join(dir, "1") },
      ],
      signal(),
    );
    expect(report).toMatchObject({ files: 3, bytes: 3 });
    expect(readFileSync(join(dir, "0", "a.csv"), "utf8")).toBe("a");
    expect(readFileSync(join(dir, "0", "sub", "b.csv"), "utf8")).toBe("b");
    expect(existsSync(join(dir, "0", "c.txt"))).toBe(false);
    expect(readFileSync(join(dir, "1", "single.bin"), "utf8")).toBe("s");
  });

  it("a refused check is 2014 with the store's reason (asked again with a GET: a HEAD answer has none); no answer at all is 2013", async () => {
    store.handle = (request, response) => {
      if (request.method === "HEAD") return response.writeHead(403).end();
      xmlError(response, 403, "SignatureDoesNotMatch", "check your key");
    };
    const refused = await failure(plane().check([{ url: "s3://b/out", dir }], signal()));
    expect(refused.exitCode).toBe(2014);
    expect(refused.message).toBe(
      "data access unauthorized: s3://b with the data credential `fake`: SignatureDoesNotMatch (HTTP 403): check your key",
    );

    const closed = dataCredentialFrom("closed", {
      endpoint: "s3://b",
      access_key_id: "i",
      access_key: "k",
      override_url: "http://127.0.0.1:1",
    });
    const unreachable = objectStoreDataPlane({ credentials: () => [closed], retry: { attempts: 1, firstDelayMs: 1 } });
    const error = await failure(unreachable.check([{ url: "s3://b/out", dir }], signal()));
    expect(error.exitCode).toBe(2013);
    expect(error.message).toMatch(
      /^the data authorization check could not be made: s3:\/\/b with the data credential `closed`: .*ECONNREFUSED/,
    );
  });

  it("a stop aborts a transfer the store does not answer", async () => {
    store.handle = (request, response) => {
      if (isHeadBucket(request)) return response.end();
      if (request.url!.includes("list-type=2")) return listing(response, [["in/slow.bin", "x"]]);
      if (request.method === "HEAD") return xmlError(response, 404, "NotFound", "");
      response.writeHead(200, { "content-length": 1_000_000 });
      response.write("x"); // and never more
    };
    const stop = new AbortController();
    const started = Date.now();
    const transfer = plane().download([{ url: "s3://b/in", dir }], stop.signal);
    setTimeout(() => stop.abort(), 300);
    await expect(transfer).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(existsSync(join(dir, "slow.bin"))).toBe(false);
  });
});
