#!/usr/bin/env node
// Benchmark: troupe server (issue 5). Run as root after `npm run build`:
//   node bench/server-scale.mjs [--clients 200] [--seconds 30] [--log-mb 200]
// One real server process on loopback (host runtime, --isolation none):
// 1. submissions: N concurrent clients, each with its own token, submitting a
//    one-task workflow again and again for S seconds: throughput, p50/p99
//    latency, every accepted submission found again in the server's list
//    (none lost), the server's peak memory;
// 2. log streaming: one task writing M MB; a follower (logs?follow=true)
//    receives all of it, checked byte for byte (length and SHA-256 against
//    the log file); throughput;
// 3. the query of a 10,000-task workflow (GET /api/workflow/{id}), p50 of 20: while it runs (tasks
//    sleeping; then trivial tasks back to back, which saturates the server) and once it has ended.
import { spawn, execFileSync } from "node:child_process";
import { request } from "node:http";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const clients = arg("clients", 200);
const seconds = arg("seconds", 30);
const logMb = arg("log-mb", 200);
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const dir = mkdtempSync("/var/tmp/troupe-sbench-");
const home = join(dir, "home");

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

function token(name) {
  return execFileSync(troupe, ["server", "token", "create", name, "--home", home], { encoding: "utf8" }).trim();
}

async function call(url, tokenValue, method, route, body) {
  const response = await fetch(url + route, {
    method,
    headers: { authorization: `Bearer ${tokenValue}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, json: await response.json() };
}

const peakRssMb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

let server;
try {
  const tokens = Array.from({ length: clients }, (_, i) => token(`user${i}`));
  const admin = token("bench");
  server = spawn(
    troupe,
    ["server", "--home", home, "--port", "0", "--runtime", "host", "--isolation", "none", "--max-runs-per-user", "100000"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });

  // --seconds 0 or --log-mb 0 leaves a part out.
  if (seconds > 0) {
    // 1. Submissions.
    const spec = 'workflow:\n  name: small\n  tasks:\n  - name: t\n    image: alpine\n    command: ["true"]\n';
    const latencies = [];
    const accepted = [];
    let refused = 0;
    const deadline = Date.now() + seconds * 1000;
    await Promise.all(
      tokens.map(async (t) => {
        while (Date.now() < deadline) {
          const t0 = performance.now();
          const { status, json } = await call(url, t, "POST", "/api/pool/default/workflow", { spec });
          latencies.push(performance.now() - t0);
          if (status === 201) accepted.push(json.id);
          else refused += 1;
        }
      }),
    );
    const listed = new Set();
    for (let offset = 0; ; offset += 1000) {
      const { json } = await call(url, admin, "GET", `/api/workflow?all_users=true&limit=1000&offset=${offset}`);
      for (const w of json.workflows) listed.add(w.id);
      if (json.workflows.length < 1000) break;
    }
    const lost = accepted.filter((id) => !listed.has(id)).length;
    console.log(`submissions: ${clients} clients for ${seconds} s`);
    console.log(`  accepted ${accepted.length} (${(accepted.length / seconds).toFixed(0)}/s), refused ${refused}, lost ${lost}`);
    console.log(`  latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`);
    console.log(`  server peak RSS so far ${peakRssMb(server.pid).toFixed(0)} MB`);

    // The pool's 64 task slots are shared by every run: let the accepted runs finish before the next parts.
    const drain0 = performance.now();
    for (let busy = true; busy; await new Promise((r) => setTimeout(r, 500))) {
      const running = await call(url, admin, "GET", "/api/workflow?status=RUNNING&limit=1");
      const pending = await call(url, admin, "GET", "/api/workflow?status=PENDING&limit=1");
      busy = running.json.workflows.length + pending.json.workflows.length > 0;
    }
    console.log(`  every accepted run had ended ${((performance.now() - drain0) / 1000).toFixed(1)} s after the last submission`);
  }

  if (logMb > 0) {
    // 2. Log streaming.
    const bytes = logMb * 1024 * 1024;
    const chatty = `workflow:\n  name: chatty\n  tasks:\n  - name: talker\n    image: alpine\n    command: ["sh", "-c", "base64 -w 76 /dev/urandom | head -c ${bytes}"]\n`;
    const { json: submitted } = await call(url, admin, "POST", "/api/pool/default/workflow", { spec: chatty });
    const t0 = performance.now();
    const response = await fetch(`${url}/api/workflow/${submitted.id}/logs?follow=true`, { headers: { authorization: `Bearer ${admin}` } });
    const hash = createHash("sha256");
    let received = 0;
    for await (const chunk of response.body) {
      hash.update(chunk);
      received += chunk.length;
    }
    const ms = performance.now() - t0;
    const logFile = join(home, "runs", submitted.id, "logs", "talker.0.log");
    if (!existsSync(logFile)) {
      const { json: record } = await call(url, admin, "GET", `/api/workflow/${submitted.id}`);
      throw new Error(
        `no log of ${submitted.id} after following it (${received} bytes received): ${JSON.stringify(record).slice(0, 2000)}`,
      );
    }
    const onDisk = createHash("sha256").update(readFileSync(logFile)).digest("hex");
    const same = hash.digest("hex") === onDisk;
    console.log(
      `log streaming: ${(received / 1048576).toFixed(1)} MB followed in ${(ms / 1000).toFixed(2)} s (${(received / 1048576 / (ms / 1000)).toFixed(0)} MB/s, the task writing as it goes)`,
    );
    console.log(
      `  byte for byte: ${same && received === bytes ? "yes" : `NO (received ${received}, expected ${bytes}, hashes ${same ? "equal" : "differ"})`}`,
    );
  }

  // 3. Query of a 10,000-task workflow: while it runs (its tasks sleep, 64 at a time: the server mostly idle),
  // while it runs 10,000 trivial tasks back to back (the server saturated: 2 cores shared with the tasks
  // and this client), and once it has ended.
  const bigSpec = (command) => {
    const lines = ["workflow:", `  name: big-${command[0]}`, "  tasks:"];
    for (let i = 0; i < 10_000; i++) lines.push(`  - {name: t${i}, image: alpine, command: ${JSON.stringify(command)}}`);
    return lines.join("\n") + "\n";
  };
  // Timed to the response's last byte with node:http (fetch's streams add 10-15 ms for 2 MB here), and the
  // client's JSON.parse of it timed apart: the parse (20-40 ms for 2 MB) is the client's, not the server's.
  const getBody = (route) =>
    new Promise((resolve, reject) => {
      const req = request(url + route, { headers: { authorization: `Bearer ${admin}` } }, (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  const query = async (id, label) => {
    const times = [];
    const parses = [];
    let tasks = 0;
    for (let i = 0; i < 20; i++) {
      const q0 = performance.now();
      const body = await getBody(`/api/workflow/${id}`);
      const q1 = performance.now();
      const json = JSON.parse(body.toString("utf8"));
      parses.push(performance.now() - q1);
      times.push(q1 - q0);
      tasks = json.groups.reduce((n, g) => n + g.tasks.length, 0);
    }
    console.log(
      `query of a ${tasks}-task workflow (${label}): p50 ${percentile(times, 50).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms` +
        ` (then the client's JSON.parse: p50 ${percentile(parses, 50).toFixed(1)} ms)`,
    );
  };
  const endRun = async (id) => {
    await call(url, admin, "POST", `/api/workflow/${id}/cancel`, { force: true });
    for (let status = ""; !/^(COMPLETED|FAILED)/.test(status); await new Promise((r) => setTimeout(r, 200)))
      status = (await call(url, admin, "GET", `/api/workflow/${id}`)).json.status;
  };
  const { json: sleepy } = await call(url, admin, "POST", "/api/pool/default/workflow", { spec: bigSpec(["sleep", "120"]) });
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await query(sleepy.id, "while it runs, its tasks sleeping");
  await endRun(sleepy.id);
  const { json: busy } = await call(url, admin, "POST", "/api/pool/default/workflow", { spec: bigSpec(["true"]) });
  await query(busy.id, "while it runs 10,000 trivial tasks back to back: server saturated");
  await endRun(busy.id);
  await query(busy.id, "once it has ended");
  console.log(`server peak RSS ${peakRssMb(server.pid).toFixed(0)} MB`);
} finally {
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
  rmSync(dir, { recursive: true, force: true });
}
