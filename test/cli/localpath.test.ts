/**
 * A `localpath` outside the spec file's folder is inlined into a spec other
 * users of a server may read: `troupe validate`, `troupe workflow validate`
 * and `troupe workflow submit` say so, naming the file (the real CLI, against
 * a stand-in server that records what it is sent).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/troupe");

let root: string;
let server: Server;
let url: string;
const received: Array<{ url: string; body: { spec?: string } }> = [];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-cli-localpath-"));
  fs.mkdirSync(path.join(root, "specs"));
  fs.writeFileSync(path.join(root, "secret.txt"), "not for others\n");
  fs.writeFileSync(path.join(root, "specs", "mine.txt"), "mine\n");
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      const body = JSON.parse(text || "{}") as { spec?: string; dry_run?: boolean };
      received.push({ url: request.url ?? "", body });
      response.writeHead(body.dry_run ? 200 : 201, { "content-type": "application/json" });
      response.end(JSON.stringify(body.dry_run ? { valid: true, diagnostics: [] } : { id: "wf-1" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(root, { recursive: true, force: true });
});

function troupe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, NO_COLOR: "1", TROUPE_SERVER: url, TROUPE_TOKEN: "trp_test", XDG_CONFIG_HOME: root, TROUPE_HOME: root };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function specFile(localpath: string): string {
  const file = path.join(root, "specs", `wf-${received.length}-${Math.random().toString(36).slice(2)}.yaml`);
  const lines = ["workflow:", "  name: wf", "  tasks:", "  - name: a", "    image: alpine:3.18", "    command: [cat, /tmp/x]"];
  fs.writeFileSync(file, [...lines, "    files:", "    - path: /tmp/x", `      localpath: ${localpath}`].join("\n") + "\n");
  return file;
}

const WARNING = /^(?<file>.+):9:18: warning W_LOCALPATH_OUTSIDE: localpath `\.\.\/secret\.txt` reads (?<read>\S+), outside/m;

describe("a localpath outside the spec file's folder", () => {
  it.each(["validate", "workflow validate", "workflow submit"])("is warned about by troupe %s", async (command) => {
    const file = specFile("../secret.txt");
    const run = await troupe([...command.split(" "), file]);
    expect(run.code, run.stderr).toBe(0);
    const match = WARNING.exec(run.stderr + run.stdout);
    expect(match, run.stderr + run.stdout).not.toBeNull();
    expect(match?.groups?.file).toBe(file);
    expect(match?.groups?.read).toBe(fs.realpathSync(path.join(root, "secret.txt")));
  });

  it("is not warned about when the file is beside the spec", async () => {
    const file = specFile("mine.txt");
    for (const command of [["validate"], ["workflow", "submit"]]) {
      const run = await troupe([...command, file]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr + run.stdout).not.toContain("W_LOCALPATH_OUTSIDE");
    }
  });
});
