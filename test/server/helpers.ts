/** Starting a real `troupe server` process for a test, and waiting for its address. */
import { spawn, type ChildProcess } from "node:child_process";
import { BIN, ROOT } from "../run/helpers.js";

export interface StartedServer {
  child: ChildProcess;
  url: string;
  /** Everything it printed on stdout so far. */
  out(): string;
  /** SIGTERM (the server lets running workflows finish), another after 5 s (it cancels them); waits for the exit. */
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
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const again = setTimeout(() => child.kill("SIGTERM"), 5_000);
      await exited;
      clearTimeout(again);
    },
  };
}
