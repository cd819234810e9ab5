/**
 * The data layer's deciding parts, pinned by tables: which DATA credential
 * covers a URL (its bucket, then the longest endpoint path containing the
 * URL's), how a regex filters (from the start of the relative path, not to its
 * end: Python's re.match), where a listed object lands, which key a file goes
 * to, and what counts as a refusal or a transient failure.
 */
import { describe, expect, it } from "vitest";
import { credentialFor, dataCredentialFrom, pathFilter } from "../../src/data/index.js";
import { downloadTarget, listingPrefix, parseContentRange, uploadKey, uploadParts } from "../../src/data/transfer-plan.js";
import { isRefusal, isTransient, ObjectChangedError, storeReason } from "../../src/data/store-errors.js";
import { parseStorageUrl } from "../../src/model/index.js";

const credential = (name: string, endpoint: string) => dataCredentialFrom(name, { endpoint, access_key_id: "id", access_key: "key" });
const url = (text: string) => {
  const parsed = parseStorageUrl(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
};

describe("which credential covers a URL", () => {
  const all = [
    credential("bucket", "s3://data"),
    credential("team", "s3://data/team"),
    credential("team-a", "s3://data/team/a"),
    credential("other", "s3://other/"),
  ];
  it.each([
    ["s3://data/x", "bucket"],
    ["s3://data", "bucket"],
    ["s3://data/team", "team"],
    ["s3://data/team/b/c", "team"],
    ["s3://data/team/a/c", "team-a"],
    ["s3://data/teammate", "bucket"],
    ["s3://other/x", "other"],
    ["s3://nobody/x", undefined],
  ])("%s -> %s", (text, name) => {
    expect(credentialFor(url(text), all)?.name).toBe(name);
  });
});

describe("regex filters", () => {
  it.each([
    [undefined, "anything/at/all", true],
    [".*\\.csv$", "a.csv", true],
    [".*\\.csv$", "deep/b.csv", true],
    [".*\\.csv$", "a.csv.bak", false],
    ["csv", "a.csv", false], // matched from the start, as re.match
    ["sub/", "sub/b.csv", true], // not to the end
    ["sub/|a", "a.txt", true],
  ])("%s on %s: %s", (regex, path, kept) => {
    expect(pathFilter(regex)(path)).toBe(kept);
  });

  it("the same filter answers the same however often it is asked", () => {
    const keep = pathFilter("a");
    expect([keep("a1"), keep("a2"), keep("b"), keep("a3")]).toEqual([true, true, false, true]);
  });
});

describe("where objects land and files go", () => {
  it.each([
    ["", "data/a.csv", "/in/data/a.csv"],
    ["data/", "data/a.csv", "/in/a.csv"],
    ["data/", "data/deep/b.csv", "/in/deep/b.csv"],
    ["data/", "data/dir/", undefined],
  ])("prefix %j, key %s -> %s", (prefix, key, target) => {
    expect(downloadTarget("/in", prefix, key, 2010)).toBe(target);
  });

  it.each(["data/../x", "data//x", "data/./x"])("refuses %s", (key) => {
    expect(() => downloadTarget("/in", "data/", key, 2010)).toThrow(/cannot be a file under the input directory/);
  });

  it("lists a URL's path as a directory, and uploads under it", () => {
    expect([listingPrefix(""), listingPrefix("a"), listingPrefix("a/"), listingPrefix("a/b//")]).toEqual(["", "a/", "a/", "a/b/"]);
    expect([uploadKey("", "x.bin"), uploadKey("runs/1", "m/x.bin"), uploadKey("runs/1/", "x.bin")]).toEqual([
      "x.bin",
      "runs/1/m/x.bin",
      "runs/1/x.bin",
    ]);
  });
});

describe("what a store's answer means", () => {
  const sdkError = (name: string, status?: number, message = "") =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  it.each([
    [sdkError("AccessDenied", 403), true, false],
    [sdkError("SignatureDoesNotMatch", 403), true, false],
    [sdkError("NoSuchBucket", 404), true, false],
    [sdkError("Unknown", 403), true, false],
    [sdkError("NoSuchKey", 404), false, false],
    [sdkError("InternalError", 500), false, true],
    [sdkError("SlowDown", 503), false, true],
    [sdkError("TooManyRequests", 429), false, true],
    [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), false, true],
    [Object.assign(new Error("aborted"), { name: "AbortError" }), false, false],
    [Object.assign(new Error("aborted"), { code: "ECONNRESET" }), false, true],
    [new ObjectChangedError("the object changed"), false, false],
  ])("%s: refusal %s, transient %s", (error, refusal, transient) => {
    expect(isRefusal(error)).toBe(refusal);
    expect(isTransient(error)).toBe(transient);
  });

  it("says the store's reason: its code, the HTTP status and its message", () => {
    expect(storeReason(sdkError("AccessDenied", 403, "Access Denied."))).toBe("AccessDenied (HTTP 403): Access Denied.");
    expect(storeReason(sdkError("Unknown", 403, "UnknownError"))).toBe("Unknown (HTTP 403)");
    expect(storeReason(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe(
      "connect ECONNREFUSED 127.0.0.1:1",
    );
  });
});

describe("parts", () => {
  const MIB = 1024 * 1024;
  it("one PUT up to a part's size, else parts of it, grown past 10,000 parts, the last one shorter", () => {
    expect(uploadParts(0, 8 * MIB)).toEqual({ single: true });
    expect(uploadParts(8 * MIB, 8 * MIB)).toEqual({ single: true });
    expect(uploadParts(8 * MIB + 1, 8 * MIB)).toEqual({
      single: false,
      partBytes: 8 * MIB,
      parts: [
        { number: 1, offset: 0, length: 8 * MIB },
        { number: 2, offset: 8 * MIB, length: 1 },
      ],
    });
    const huge = uploadParts(100_000 * MIB, 8 * MIB);
    if (huge.single) throw new Error("a 100,000 MiB file in one PUT");
    expect(huge.partBytes).toBe(10 * MIB);
    expect(huge.parts).toHaveLength(10_000);
  });
});

describe("a ranged answer's Content-Range", () => {
  it.each([
    ["bytes 100-199/200", { start: 100, end: 199, total: 200 }],
    ["bytes 0-0/1", { start: 0, end: 0, total: 1 }],
    ["bytes 5-9/*", { start: 5, end: 9, total: undefined }],
    [" bytes 1-2/3 ", { start: 1, end: 2, total: 3 }],
    [undefined, undefined],
    ["", undefined],
    ["bytes */200", undefined],
    ["bytes 9-5/10", undefined],
    ["items 0-1/2", undefined],
  ])("%j -> %j", (header, range) => {
    expect(parseContentRange(header)).toEqual(range);
  });
});
