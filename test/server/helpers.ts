/** Starting a real `troupe server` process for a test, and waiting for its address. */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { killKeptTasks } from "../../src/runtime/index.js";
import { BIN, ROOT } from "../run/helpers.js";

export interface StartedServer {
  child: ChildProcess;
  url: string;
  /** Everything it printed on stdout so far. */
  out(): string;
  /**
   * SIGTERM (the server exits; its running tasks are kept for the next start),
   * then ends those tasks too: a test leaves nothing running.
   */
  stop(): Promise<void>;
}

/** `troupe server --home HOME --port 0 ...args`; resolves once it says where it listens. */
export async function startServer(home: string, args: string[]): Promise<StartedServer> {
  const child = spawn(process.execPath, [BIN, "server", "--home", home, "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
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
