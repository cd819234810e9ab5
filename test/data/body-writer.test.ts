/**
 * Writing a response body into a file (src/data/body-writer.ts), with real
 * files and streams: every byte lands at its place from the position on,
 * however the body is cut into pieces (more pieces than one write may take);
 * a body that breaks is told apart from a write that fails: the first
 * resolves with what arrived (on disk), the second rejects with the write's
 * error and destroys the body.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { writeBody } from "../../src/data/body-writer.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "troupe-body-writer-"));
  return () => rmSync(dir, { recursive: true, force: true });
});

/** `data` as a stream of pieces of `size` bytes, breaking with `error` after `breakAfter` bytes when given. */
function pieces(data: Buffer, size: number, breakAfter?: number, error = new Error("aborted")): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += size) {
        if (breakAfter !== undefined && at >= breakAfter) throw error;
        yield data.subarray(at, at + size);
      }
    })(),
  );
}

describe("writing a body into a file", () => {
  it("writes every piece at its place from the position on, however many pieces a write gathers", async () => {
    const file = join(dir, "f");
    writeFileSync(file, Buffer.alloc(10, "h"));
    // 3 MiB in 100-byte pieces: 10,000 pieces to a 1 MiB write, where one writev(2) takes at most 1,024.
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const handle = await open(file, "r+");
    try {
      expect(await writeBody(pieces(data, 100), handle, 10)).toEqual({ bytes: data.length });
    } finally {
      await handle.close();
    }
    expect(readFileSync(file).equals(Buffer.concat([Buffer.alloc(10, "h"), data]))).toBe(true);
  });

  it("a body that breaks: resolves with the bytes that arrived, on disk, and why it broke", async () => {
    const file = join(dir, "f");
    const data = randomBytes(5 * 1024 * 1024);
    const reset = Object.assign(new Error("aborted"), { code: "ECONNRESET" });
    const handle = await open(file, "w");
    let written;
    try {
      written = await writeBody(pieces(data, 64 * 1024, 3 * 1024 * 1024 + 64 * 1024, reset), handle, 0);
    } finally {
      await handle.close();
    }
    expect(written).toEqual({ bytes: 3 * 1024 * 1024 + 64 * 1024, broken: reset });
    expect(readFileSync(file).equals(data.subarray(0, written.bytes))).toBe(true);
  });

  it("a write that fails rejects with the write's error, not as a broken body, and destroys the body", async () => {
    const file = join(dir, "f");
    writeFileSync(file, "");
    const body = pieces(randomBytes(4 * 1024 * 1024), 64 * 1024);
    const readOnly = await open(file, "r");
    try {
      await expect(writeBody(body, readOnly, 0)).rejects.toMatchObject({ code: "EBADF" });
    } finally {
      await readOnly.close();
    }
    expect(body.destroyed).toBe(true);
  });
});
