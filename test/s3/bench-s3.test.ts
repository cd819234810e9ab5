/**
 * scripts/awscli.sh (awscli from PyPI into a cache outside the clone, for the S3 benchmark) and
 * bench/s3-transfer.mjs end to end at a small size against the real S3 server: the script installs once and
 * then only prints the path; the benchmark moves both cases both ways with both tools, checks what came back,
 * prints a ratio per case, and removes its bucket and files.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { ensureBuilt } from "../run/helpers.js";
import { attemptServer, clientFor, releaseServer, type S3Server } from "./s3-server.js";

const run = promisify(execFile);
const AWSCLI = fileURLToPath(new URL("../../scripts/awscli.sh", import.meta.url));
const BENCH = fileURLToPath(new URL("../../bench/s3-transfer.mjs", import.meta.url));
const attempt = attemptServer();
if (attempt.reason) console.warn(`test/s3/bench-s3.test.ts skipped: ${attempt.reason}`);

describe("scripts/awscli.sh", () => {
  it("installs the pinned awscli once and afterwards prints its path at once", { timeout: 300_000 }, async () => {
    const first = await run("bash", [AWSCLI]);
    const path = first.stdout.trim();
    expect(path).toMatch(/^\/.*\/awscli-1\.46\.2\/bin\/aws$/);
    const started = Date.now();
    const again = await run("bash", [AWSCLI]);
    expect(again.stdout.trim()).toBe(path);
    expect(again.stderr).toBe("");
    expect(Date.now() - started).toBeLessThan(2_000);
    const version = await run(path, ["--version"]);
    expect(version.stdout + version.stderr).toMatch(/^aws-cli\/1\.46\.2 /);
  });
});

describe.skipIf(!attempt.server)(`bench/s3-transfer.mjs (${attempt.reason ?? "scripts/s3/up.sh"})`, () => {
  const server = attempt.server as S3Server;

  it("moves both cases both ways with troupe and aws, checks them, reports each ratio, and cleans up", { timeout: 300_000 }, async () => {
    await ensureBuilt();
    try {
      const { stdout, stderr } = await run(process.execPath, [BENCH, "--rounds", "1", "--mib", "20", "--files", "6"], {
        env: {
          ...process.env,
          TROUPE_S3_ENDPOINT: server.endpoint,
          TROUPE_S3_REGION: server.region,
          TROUPE_S3_ADMIN_ACCESS_KEY_ID: server.admin.accessKeyId,
          TROUPE_S3_ADMIN_SECRET_ACCESS_KEY: server.admin.secretAccessKey,
        },
      });
      for (const row of [
        "one object, 20 MiB upload",
        "one object, 20 MiB download",
        "6 files of 1 MiB upload",
        "6 files of 1 MiB download",
      ])
        expect(stdout).toMatch(new RegExp(`${row} +\\d+ +\\d+ +\\d+\\.\\d\\dx`));
      const pid = /troupe-bench-s3-(\d+)/.exec(stderr)?.[1];
      expect(pid).toBeDefined();
      expect(existsSync(`/var/tmp/troupe-bench-s3-${pid}`)).toBe(false);
      expect(readdirSync("/var/tmp").filter((e) => e === `troupe-bench-s3-${pid}`)).toEqual([]);
      const s3 = clientFor(server, server.admin);
      await expect(s3.send(new HeadBucketCommand({ Bucket: `troupe-bench-${pid}` }))).rejects.toMatchObject({ name: "NotFound" });
      s3.destroy();
    } finally {
      releaseServer(server);
    }
  });
});
