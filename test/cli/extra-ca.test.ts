/**
 * NODE_EXTRA_CA_CERTS, deferred by bin/troupe's shell line to troupe's first TLS client (src/util/extra-ca.ts):
 * an HTTPS server on loopback with a certificate of a CA made here, which only the variable's file trusts.
 * - The real CLI, started as users start it (the launcher itself, not `node bin/troupe`), reaches the server
 *   with the variable set, and fails on the certificate without it (so the file is what makes it trusted).
 * - On a copy of the launcher with a stand-in bundle: Node.js did not read the file at its start (a connection
 *   before `trustExtraCaCerts()` fails), the variable is back in the environment for children, the marker is
 *   gone, and after `trustExtraCaCerts()` both https (the S3 SDK's) and fetch (the CLI's) trust the CA.
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../run/helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let dir: string;
let server: Server;
let url: string;
const requests: { path: string; authorization: string | undefined }[] = [];

beforeAll(async () => {
  await ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-extra-ca-"));
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=troupe test CA");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  fs.writeFileSync(path.join(dir, "san.cnf"), "subjectAltName=IP:127.0.0.1\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    "server.pem",
    "-extfile",
    "san.cnf",
  );
  server = createServer(
    { key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.pem")) },
    (req, res) => {
      requests.push({ path: req.url ?? "", authorization: req.headers.authorization });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ workflows: [] }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 240_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Run asynchronously: the HTTPS server answers from this process. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

function environment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TROUPE_HOME: path.join(dir, "home"), NO_COLOR: "1" };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.TROUPE_DEFERRED_EXTRA_CA_CERTS;
  return { ...env, ...extra };
}

describe("NODE_EXTRA_CA_CERTS through bin/troupe", () => {
  it("the CLI trusts the file's CA at its first request, and only with it", async () => {
    const served = { TROUPE_SERVER: url, TROUPE_TOKEN: "secret-token" };
    const trusted = await run(
      path.join(ROOT, "bin", "troupe"),
      ["workflow", "list"],
      environment({ ...served, NODE_EXTRA_CA_CERTS: path.join(dir, "ca.pem") }),
    );
    expect(trusted.stderr).not.toMatch(/certificate/i);
    expect(trusted.status).toBe(0);
    expect(requests.at(-1)).toEqual({ path: expect.stringMatching(/^\/api\/workflow/), authorization: "Bearer secret-token" });

    const before = requests.length;
    const untrusted = await run(path.join(ROOT, "bin", "troupe"), ["workflow", "list"], environment(served));
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.stderr).toMatch(/cannot reach .*certificate/i);
    expect(requests.length).toBe(before);
  }, 120_000);

  it("Node.js does not read the file at its start; the environment has it back; https and fetch trust it once asked", async () => {
    const copy = path.join(dir, "copy");
    fs.mkdirSync(path.join(copy, "bin"), { recursive: true });
    for (const file of ["troupe", "package.json"]) fs.copyFileSync(path.join(ROOT, "bin", file), path.join(copy, "bin", file));
    fs.mkdirSync(path.join(copy, "dist", "bundle"), { recursive: true });
    // A stand-in for the bundle: what the launcher left, then connections before and after trustExtraCaCerts().
    const extraCa = pathToFileURL(path.join(ROOT, "dist", "util", "extra-ca.js")).href;
    fs.writeFileSync(
      path.join(copy, "dist", "bundle", "troupe.cjs"),
      `
const { execFileSync } = require("node:child_process");
const { Worker } = require("node:worker_threads");
const get = \`(url) => new Promise((resolve) => require("node:https").get(url, (res) => { res.resume(); resolve(res.statusCode); }).on("error", (e) => resolve(e.code)))\`;
// In a worker: the launcher runs the bundle as a vm Script, which has no import(); the worker shares the process
// (Node's start, which did not read the file) but not the launcher's global, which it is given.
const trusted = \`
  const { workerData, parentPort } = require("node:worker_threads");
  globalThis[Symbol.for("troupe.deferredExtraCaCerts")] = workerData.deferred;
  const get = \${get};
  (async () => {
    (await import(workerData.module)).trustExtraCaCerts();
    const fetched = await fetch(workerData.url).then((r) => r.status, (e) => e.cause?.code ?? e.message);
    parentPort.postMessage({ https: await get(workerData.url), fetch: fetched });
  })();
\`;
exports.main = async () => {
  const url = process.env.SERVER;
  const deferred = globalThis[Symbol.for("troupe.deferredExtraCaCerts")];
  const seen = {
    variable: process.env.NODE_EXTRA_CA_CERTS,
    marker: process.env.TROUPE_DEFERRED_EXTRA_CA_CERTS ?? null,
    deferred,
    child: execFileSync(process.execPath, ["-p", "process.env.NODE_EXTRA_CA_CERTS"], { encoding: "utf8" }).trim(),
    before: await eval(get)(url),
  };
  const worker = new Worker(trusted, { eval: true, workerData: { deferred, url, module: ${JSON.stringify(extraCa)} } });
  Object.assign(seen, await new Promise((resolve) => worker.once("message", resolve)));
  await worker.terminate();
  process.stdout.write(JSON.stringify(seen));
  return 0;
};
`,
    );
    const ca = path.join(dir, "ca.pem");
    const result = await run(path.join(copy, "bin", "troupe"), ["--version"], environment({ NODE_EXTRA_CA_CERTS: ca, SERVER: url }));
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({
      variable: ca,
      marker: null,
      deferred: ca,
      child: ca,
      before: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      https: 200,
      fetch: 200,
    });
  }, 60_000);
});
