/** Starting a real `troupe server` process for a test, and waiting for its address. */
import { spawn, type ChildProcess } from "node:child_process";
import * as http from "node:http";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { killKeptTasks } from "../../src/runtime/index.js";
import { BIN, ROOT } from "../run/helpers.js";

export interface StartedServer {
  child: ChildProcess;
  url: string;
  /** Everything it printed on stdout so far. */
  out(): string;
  /** Everything it printed on stderr so far (Node's own warnings among it). */
  err(): string;
  /**
   * SIGTERM (the server exits; its running tasks are kept for the next start),
   * then ends those tasks too: a test leaves nothing running.
   */
  stop(): Promise<void>;
}

/** `troupe server --home HOME --port 0 ...args`; resolves once it says where it listens. */
export async function startServer(home: string, args: string[], env: Record<string, string> = {}): Promise<StartedServer> {
  const child = spawn(process.execPath, [BIN, "server", "--home", home, "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", () => {
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}): ${out}${err}`)));
  });
  return {
    child,
    url,
    out: () => out,
    err: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      killKeptTasksOf(home);
    },
  };
}

/** Ends every kept task of the server home's runs (they outlive the server by design). */
export function killKeptTasksOf(home: string): void {
  let runs: string[] = [];
  try {
    runs = readdirSync(join(home, "runs"));
  } catch {
    return;
  }
  for (const run of runs) killKeptTasks(join(home, "runs", run));
}

/**
 * One HTTP request. (Not fetch: the server answers 413 from the headers and
 * closes, so a large body is sent only if no answer came first; otherwise its
 * broken pipe would be reported instead of the answer.)
 */
export async function request(url: string, method: string, target: string, headers: Record<string, string>, body?: string) {
  let answered = false;
  const req = http.request(url + target, {
    method,
    headers: { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) },
  });
  const response = new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    req.on("response", (res) => {
      answered = true;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"] ?? "", text }));
    });
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
  });
  if (body !== undefined && body.length > 1024 * 1024) {
    req.flushHeaders();
    await Promise.race([response, new Promise((resolve) => setTimeout(resolve, 1000))]);
  }
  if (!answered) req.end(body);
  return response;
}
