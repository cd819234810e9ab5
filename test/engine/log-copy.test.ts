/**
 * engine/log-copy.ts: the log of a pool without local logs is copied from
 * its stream into the attempt's file, the run's secrets masked however the
 * stream cuts them (a real file; the stream is a Node stream of chunks).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { copyLog } from "../../src/engine/log-copy.js";

const SECRET = "hf_TOKEN-0123456789abcdef";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-log-copy-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("copyLog", () => {
  it("masks the run's secrets, one split across chunks included, and appends to what the file has", async () => {
    const file = path.join(dir, "a", "0.log");
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, "before restart\n");
    const chunks = ["token: hf_TOK", "EN-01234", "56789abcdef\n", `again ${SECRET}`, " end\n"].map((c) => Buffer.from(c));
    const errors: Error[] = [];
    await copyLog(
      () => Readable.from(chunks),
      file,
      (e) => errors.push(e),
      [SECRET, "short"],
    );
    expect(errors).toEqual([]);
    expect(fs.readFileSync(file, "utf8")).toBe("before restart\ntoken: [MASKED]\nagain [MASKED] end\n");
  });

  it("copies bytes as they are without secrets", async () => {
    const file = path.join(dir, "b", "0.log");
    await copyLog(
      () => Readable.from([Buffer.from(`plain ${SECRET}\n`)]),
      file,
      () => undefined,
    );
    expect(fs.readFileSync(file, "utf8")).toBe(`plain ${SECRET}\n`);
  });
});
