/**
 * The real S3 test server (scripts/s3/up.sh: SeaweedFS's `weed server -s3` on 127.0.0.1) for the tests that
 * need one: the server CI started (its `export` lines evaluated, so TROUPE_S3_ENDPOINT is set), or one this
 * process brings up (the first time on a machine that builds SeaweedFS from its Go module: minutes).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { parseExports } from "../slurm/slurm-cluster.js";

export const UP_SCRIPT = fileURLToPath(new URL("../../scripts/s3/up.sh", import.meta.url));
export const DOWN_SCRIPT = fileURLToPath(new URL("../../scripts/s3/down.sh", import.meta.url));
/** up.sh's default state directory (scripts/s3/common.sh). */
const DEFAULT_DIR = "/var/tmp/troupe-s3";

export interface S3Identity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface S3Server {
  readonly endpoint: string;
  readonly region: string;
  /** Every right on every bucket. */
  readonly admin: S3Identity;
  /** Allowed only `userBucket`. */
  readonly user: S3Identity;
  readonly userBucket: string;
  /** Whether this process brought the server up (then it takes it down when done). */
  readonly startedHere: boolean;
}

export type ServerAttempt = { server: S3Server; reason?: undefined } | { server?: undefined; reason: string };

/** Reads `export NAME=VALUE` lines (what up.sh prints), as the Slurm scripts' are read. */
export { parseExports } from "../slurm/slurm-cluster.js";

/** The server that `export` lines (or the environment) describe. */
export function serverFrom(values: Record<string, string | undefined>, where: string, startedHere: boolean): S3Server {
  const need = (name: string) => {
    const value = values[name];
    if (!value) throw new Error(`${where} lacks ${name}`);
    return value;
  };
  return {
    endpoint: need("TROUPE_S3_ENDPOINT"),
    region: need("TROUPE_S3_REGION"),
    admin: { accessKeyId: need("TROUPE_S3_ADMIN_ACCESS_KEY_ID"), secretAccessKey: need("TROUPE_S3_ADMIN_SECRET_ACCESS_KEY") },
    user: { accessKeyId: need("TROUPE_S3_USER_ACCESS_KEY_ID"), secretAccessKey: need("TROUPE_S3_USER_SECRET_ACCESS_KEY") },
    userBucket: need("TROUPE_S3_USER_BUCKET"),
    startedHere,
  };
}

/** The server to test on: CI's (TROUPE_S3_ENDPOINT and the rest in the environment), or one brought up now. */
export function attemptServer(): ServerAttempt {
  if (process.env.TROUPE_S3_ENDPOINT) return { server: serverFrom(process.env, "the environment", false) };
  const wasUp = existsSync(`${process.env.TROUPE_S3_DIR || DEFAULT_DIR}/env`);
  try {
    // A first build of SeaweedFS on 2 cores takes minutes; later starts take seconds.
    const out = execFileSync("bash", [UP_SCRIPT], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 1_800_000 });
    return { server: serverFrom(parseExports(out), UP_SCRIPT, !wasUp) };
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return { reason: `scripts/s3/up.sh failed: ${(e.stderr || e.message).trim().split("\n").slice(-5).join(" | ")}` };
  }
}

/** Takes down a server this process brought up. */
export function releaseServer(server: S3Server): void {
  if (server.startedHere) execFileSync("bash", [DOWN_SCRIPT], { stdio: "ignore", timeout: 60_000 });
}

/**
 * A client as troupe's data plane will make one for an S3-compatible endpoint: path-style addressing (no
 * bucket-name DNS), the server's region, and checksums only where an operation requires them (recent SDKs
 * add CRC32 trailers to every upload by default, which not every S3-compatible server accepts).
 */
export function clientFor(server: S3Server, identity: S3Identity, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: identity,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...overrides,
  });
}

/**
 * `troupe credential set NAME --type data ...` for `endpoint` on this server,
 * with the user's keys (or the secret given: a wrong one).
 */
export function dataCredentialArgs(server: S3Server, name: string, endpoint: string, secret = server.user.secretAccessKey): string[] {
  return [
    "credential",
    "set",
    name,
    "--type",
    "data",
    "--payload",
    `endpoint=${endpoint}`,
    `region=${server.region}`,
    `access_key_id=${server.user.accessKeyId}`,
    `access_key=${secret}`,
    `override_url=${server.endpoint}`,
  ];
}

/** Removes every object under `prefix/` of `bucket` (a test's own prefix, at its end); at most the 1,000 a listing gives. */
export async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
  if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
}
