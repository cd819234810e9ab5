/** Starting a real `troupe server` process for a test, and waiting for its address. */
import { spawn, type ChildProcess } from "node:child_process";
import { BIN, ROOT } from "../run/helpers.js";

export interface StartedServer {
  child: ChildProcess;
  url: string;
  /** Everything it printed on stdout so far. */
  out(): string;
  /** SIGTERM, and wait for it to exit (nothing if it has already). */
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
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}
