/**
 * Running the network tools (`ip`, `iptables`) for network.ts: one child
 * process per call, stdin for batches, and errors that carry the tool's own
 * stderr (and, for `ip -batch`, the command of the script that failed).
 */
import { spawn } from "node:child_process";
import { TroupeError } from "../../errors/index.js";

/** What network setup failures are thrown as: a system failure with code E_NETWORK. */
export class NetworkError extends TroupeError {
  constructor(message: string, hint?: string) {
    super("E_NETWORK", message, "system", hint);
    this.name = "NetworkError";
  }
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let spawned = 0;

/** How many tool processes this module has started (for tests and benchmarks). */
export function netProcessCount(): number {
  return spawned;
}

/**
 * Runs `file args` with `input` on stdin. Resolves with its exit status and
 * output whatever the status; rejects only when it could not be started.
 */
export function run(file: string, args: readonly string[], input?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    spawned++;
    const child = spawn(file, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C" },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    child.once("error", (error: NodeJS.ErrnoException) => {
      const why = error.code === "ENOENT" ? `${file} is not installed (not found on PATH)` : `cannot run ${file}: ${error.message}`;
      reject(new NetworkError(why));
    });
    child.once("close", (code, signal) => {
      resolve({ code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    if (input !== undefined && child.stdin) {
      // A tool that exits early closes its stdin; the exit status tells what happened.
      child.stdin.on("error", () => undefined);
      child.stdin.end(input);
    }
  });
}

/** `file args` must succeed; the error says what was attempted and what the tool said. */
export async function runOk(file: string, args: readonly string[], what: string, input?: string): Promise<string> {
  const result = await run(file, args, input);
  if (result.code !== 0) throw new NetworkError(`${what}: ${describeFailure(file, args, result)}`);
  return result.stdout;
}

export function describeFailure(file: string, args: readonly string[], result: ExecResult): string {
  const status = result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
  const said = result.stderr.trim() || result.stdout.trim() || "no message";
  return `\`${[file, ...args].join(" ")}\` failed (${status}): ${said}`;
}

/**
 * Runs an `ip -batch -` script: one process for all its commands. With
 * `force`, ip goes on past failing commands (and still exits non-zero).
 */
export async function ipBatch(script: string, options: { force?: boolean } = {}): Promise<ExecResult> {
  const args = options.force ? ["-force", "-batch", "-"] : ["-batch", "-"];
  return run("ip", args, script);
}

/** ip says "Command failed -:N" for line N of the script: quote that line with ip's own message. */
export function explainBatchFailure(script: string, result: ExecResult): string {
  const lines = script.split("\n");
  const messages = result.stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const failed = messages
    .map((line) => /^Command failed -:(\d+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `\`ip ${lines[Number(m[1]) - 1] ?? "?"}\``);
  const said = messages.filter((line) => !line.startsWith("Command failed")).join("; ") || "no message";
  const status = result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
  return failed.length > 0 ? `${failed.join(", ")} failed: ${said}` : `ip -batch failed (${status}): ${said}`;
}

/** `ip -j ...` parsed; ip prints nothing at all (not `[]`) for some empty lists. */
export async function ipJson<T>(args: readonly string[], what: string): Promise<T[]> {
  const stdout = await runOk("ip", ["-j", ...args], what);
  const text = stdout.trim();
  if (text === "") return [];
  try {
    return JSON.parse(text) as T[];
  } catch {
    throw new NetworkError(`${what}: \`ip -j ${args.join(" ")}\` printed something that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** Runs a script of `link del` commands, ignoring links already gone; throws on any other failure. */
export async function deleteLinks(script: string): Promise<void> {
  if (script === "") return;
  const result = await ipBatch(script, { force: true });
  if (result.code === 0) return;
  const real = result.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("Command failed") && !/Cannot find device|does not exist|No such device/.test(l));
  if (real.length > 0) throw new NetworkError(`cannot delete ${script.trim().split("\n").join(", ")}: ${real.join("; ")}`);
}
