/**
 * The real Slurm test cluster (scripts/slurm/up.sh) for the tests that need one: the cluster CI started
 * (TROUPE_SLURM_CONF names its slurm.conf), or one this process brings up. Not SLURM_CONF: a developer's
 * own cluster is never the one these tests drain nodes of and kill daemons on.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
export const UP_SCRIPT = fileURLToPath(new URL("../../scripts/slurm/up.sh", import.meta.url));
export const DOWN_SCRIPT = fileURLToPath(new URL("../../scripts/slurm/down.sh", import.meta.url));
/** up.sh's default state directory (scripts/slurm/common.sh). */
const DEFAULT_DIR = "/var/tmp/troupe-slurm";

export interface SlurmCluster {
  /** Environment for the Slurm commands (SLURM_CONF set). */
  readonly env: NodeJS.ProcessEnv;
  /** The state directory (nodes' PID files, logs, the jobcomp file). */
  readonly dir: string;
  /** The cluster's shared file system: the same directory on every node and on this (the login) node. */
  readonly shared: string;
  /** This machine's address on the cluster's bridge, which every node reaches. */
  readonly loginAddress: string;
  /** Node nI's address (I from 1). */
  nodeAddress(index: number): string;
  /** Whether this process brought the cluster up (then it takes it down when done). */
  readonly startedHere: boolean;
}

export type ClusterAttempt = { cluster: SlurmCluster; reason?: undefined } | { cluster?: undefined; reason: string };

/** Reads `export NAME=VALUE` lines (what up.sh prints and keeps in its `env` file). */
export function parseExports(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) values[m[1]!] = m[2]!;
  }
  return values;
}

function fromExports(values: Record<string, string>, where: string, startedHere: boolean): SlurmCluster {
  const { SLURM_CONF: conf, TROUPE_SLURM_DIR: dir, TROUPE_SLURM_SHARED: shared, TROUPE_SLURM_NET: net } = values;
  const loginAddress = values.TROUPE_SLURM_LOGIN_ADDRESS;
  if (!conf || !dir || !shared || !loginAddress || !net)
    throw new Error(
      `${where} lacks one of SLURM_CONF, TROUPE_SLURM_DIR, TROUPE_SLURM_SHARED, TROUPE_SLURM_LOGIN_ADDRESS, TROUPE_SLURM_NET`,
    );
  // Every setting up.sh printed goes along, so that running up.sh again (to repair a node) keeps the same cluster.
  return { env: { ...process.env, ...values }, dir, shared, loginAddress, nodeAddress: (i) => `${net}.1${i}`, startedHere };
}

/**
 * The cluster to test on: CI's (TROUPE_SLURM_CONF, whose state directory's `env` file up.sh wrote), or one
 * brought up now (a real attempt: packages installed, daemons started). Reports why when there can be none.
 */
export function attemptCluster(): ClusterAttempt {
  if (process.env.TROUPE_SLURM_CONF) return givenCluster();
  if (process.getuid?.() !== 0) return { reason: "the test cluster needs root (network namespaces, a bridge, daemons as root)" };
  const wasUp = existsSync(`${process.env.TROUPE_SLURM_DIR || DEFAULT_DIR}/env`);
  try {
    const out = execFileSync("bash", [UP_SCRIPT], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 300_000 });
    return { cluster: fromExports(parseExports(out), UP_SCRIPT, !wasUp) };
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return { reason: `scripts/slurm/up.sh failed: ${(e.stderr || e.message).trim().split("\n").slice(-5).join(" | ")}` };
  }
}

/**
 * The cluster CI started (TROUPE_SLURM_CONF), never one brought up here: for the suites that add a Slurm
 * target to their local ones, which run without a cluster too. Reports why when there is none.
 */
export function givenCluster(): ClusterAttempt {
  const given = process.env.TROUPE_SLURM_CONF;
  if (!given)
    return {
      reason:
        'no Slurm test cluster: TROUPE_SLURM_CONF is not set (scripts/test.sh sets it; by hand: eval "$(bash scripts/slurm/up.sh)"; export TROUPE_SLURM_CONF=$SLURM_CONF)',
    };
  const envFile = `${dirname(dirname(given))}/env`;
  if (!existsSync(envFile)) return { reason: `TROUPE_SLURM_CONF names ${given}, but up.sh's ${envFile} is missing (is the cluster up?)` };
  return { cluster: fromExports(parseExports(readFileSync(envFile, "utf8")), envFile, false) };
}

/** Runs a Slurm command (or any program) against the cluster; rejects with its stderr on a non-zero exit. */
export async function slurm(cluster: SlurmCluster, command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { env: cluster.env, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Runs up.sh or down.sh with extra settings; resolves with how it ended (never rejects on a non-zero exit). */
export async function runScript(cluster: SlurmCluster, script: string, settings: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await execFileAsync("bash", [script], { env: { ...cluster.env, ...settings }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `scontrol show job -o ID` as fields. Values may not hold spaces (a comment's are cut at the first). */
export async function showJob(cluster: SlurmCluster, jobId: string): Promise<Record<string, string>> {
  const line = await slurm(cluster, "scontrol", ["show", "job", "-o", jobId]);
  const fields: Record<string, string> = {};
  for (const word of line.trim().split(/\s+/)) {
    const at = word.indexOf("=");
    if (at > 0) fields[word.slice(0, at)] = word.slice(at + 1);
  }
  return fields;
}

/** Polls `probe` every `everyMs` until it returns a value (not undefined), or throws after `ms`. */
export async function pollFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The test files' lock on the one test cluster (vitest runs files in parallel): a test that disturbs the
 * cluster (drains a node, kills a slurmd, holds every node) takes it exclusive, and the files whose runs a
 * disturbed cluster would fail take it shared while they run there. flock(1) holds it, in the cluster's
 * state directory: until the returned function closes its stdin, or this process dies (then its pipe
 * closes). Not the developers' lock around whole vitest commands (docs/slurm-notes.md): a file of its own.
 */
export async function lockCluster(cluster: SlurmCluster, mode: "shared" | "exclusive"): Promise<() => Promise<void>> {
  const file = `${cluster.dir}/tests.lock`;
  const holder = spawn("flock", [mode === "shared" ? "-s" : "-x", file, "sh", "-c", "echo held; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  holder.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once("data", () => resolve());
    holder.once("error", reject);
    holder.once("exit", (code) => reject(new Error(`flock ${file} ended (exit ${code}) before it held the lock: ${stderr.trim()}`)));
  });
  return () =>
    new Promise<void>((resolve) => {
      if (holder.exitCode !== null || holder.signalCode !== null) return resolve();
      holder.once("exit", () => resolve());
      holder.stdin.end();
    });
}
