// One member of a troupe group on a Slurm node. The group's batch script starts one step whose every task
// runs this helper (`srun node member-helper.mjs MEMBERS_FILE`); task SLURM_PROCID is member number
// SLURM_PROCID of the file (one key and directory per line). The helper:
//   connects back to troupe (the address in the run's `listener` file on the shared file system) and says
//   where it is (hello: its key, node, job), which troupe reports as the member's placement;
//   waits for its launch (argv, env, output directory; tokens resolve only once every member is placed),
//   says ready, waits for "go", runs the command as a plain process of the node with its output in the
//   launch's log file (troupe's home is on the shared file system), and writes its exit status to the member's `exit` file before saying it;
//   stops the command when told (SIGTERM, SIGKILL after the grace).
// Its connection may break (troupe restarted): the command goes on, and the helper connects again to
// whatever address the `listener` file names next. A run whose tasks must not outlive troupe (not `keep`)
// ends its command when troupe is gone for longer than the launch's `orphanMs`.
// Plain JavaScript, no imports but Node's: it runs from the shared file system with the node's `node`.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import { spawn } from "node:child_process";

const [membersFile] = process.argv.slice(2);
const rank = Number(process.env.SLURM_PROCID ?? "0");
const [key, dir] = fs.readFileSync(membersFile, "utf8").split("\n")[rank].split("\t");
const runDir = membersFile.slice(0, membersFile.lastIndexOf("/jobs/"));
const token = fs.readFileSync(`${runDir}/token`, "utf8").trim();
const keep = fs.existsSync(`${runDir}/keep`);
const job = process.env.SLURM_JOB_ID ?? "";

let socket;
let launch;
let child;
let released = false;
let exitStatus;
let orphanTimer;

const send = (message) => socket?.writable && socket.write(`${JSON.stringify(message)}\n`);
const sayState = () => {
  if (exitStatus !== undefined) send({ t: "exit", code: exitStatus });
  else if (child) send({ t: "started", again: true });
  else if (launch) send({ t: "ready" });
};

function connect() {
  let address;
  try {
    address = fs.readFileSync(`${runDir}/listener`, "utf8").trim();
  } catch {
    return setTimeout(connect, 500);
  }
  const at = address.lastIndexOf(":");
  const s = net.connect(Number(address.slice(at + 1)), address.slice(0, at));
  socket = s;
  let buffer = "";
  s.on("connect", () => {
    clearTimeout(orphanTimer);
    orphanTimer = undefined;
    send({ t: "hello", token, key, node: os.hostname(), job, running: child !== undefined });
    sayState();
  });
  s.on("data", (data) => {
    buffer += data;
    for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      if (line) handle(JSON.parse(line));
    }
  });
  s.on("error", () => undefined);
  s.on("close", () => {
    if (socket !== s) return;
    socket = undefined;
    if (exitStatus !== undefined) return process.exit(0);
    if (!keep) orphanTimer ??= setTimeout(() => (child ? stop(launch?.graceMs ?? 5000) : process.exit(0)), launch?.orphanMs ?? 30000);
    // troupe restarted: a new listener, named in the same file.
    setTimeout(connect, 500);
  });
}

function handle(message) {
  if (message.t === "launch") prepare(message.launch);
  else if (message.t === "go") start();
  else if (message.t === "stop") stop(message.graceMs);
}

function prepare(given) {
  if (launch) return sayState();
  if (given.files.length > 0) return fail(`files: cannot be placed by a plain process on a Slurm node (${given.files[0]})`);
  try {
    fs.mkdirSync(given.outputDir, { recursive: true });
  } catch (error) {
    return fail(`cannot make its output directory ${given.outputDir}: ${error.message}`);
  }
  launch = given;
  send({ t: "ready" });
}

function fail(message) {
  send({ t: "failed", message });
  end();
}

function start() {
  if (!launch || released) return;
  released = true;
  fs.mkdirSync(launch.logPath.slice(0, launch.logPath.lastIndexOf("/")) || "/", { recursive: true });
  const output = fs.openSync(launch.logPath, "a");
  const env = { ...process.env, ...launch.env };
  delete env.TROUPE_SLURM_TOKEN;
  // With secrets to mask (the task's credentials'), its output comes through this helper to the log.
  const masker = launch.secrets?.length ? secretMasker(launch.secrets) : undefined;
  try {
    child = spawn(launch.argv[0], launch.argv.slice(1), {
      cwd: launch.outputDir,
      env,
      stdio: masker ? ["ignore", "pipe", "pipe"] : ["ignore", output, output],
      detached: true,
    });
  } catch (error) {
    return finish(127, `cannot start ${launch.argv[0]}: ${error.message}`);
  }
  if (!masker) fs.closeSync(output);
  else {
    const write = (bytes) => bytes.length > 0 && fs.writeSync(output, bytes);
    child.stdout.on("data", (chunk) => write(masker.push(chunk)));
    child.stderr.on("data", (chunk) => write(masker.push(chunk)));
  }
  child.on("error", (error) => finish(127, `cannot start ${launch.argv[0]}: ${error.message}`));
  // What the command left running must not hold its output open (and its end back): it goes, as without masking.
  if (masker)
    child.on("exit", () =>
      setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Nothing left.
        }
      }, 1000).unref(),
    );
  // Masked: ended once its output has been read to the end, and the held-back rest written.
  child.on(masker ? "close" : "exit", (code, signal) => {
    if (masker) {
      fs.writeSync(output, masker.end());
      fs.closeSync(output);
    }
    finish(code ?? 128 + (os.constants.signals[signal] ?? 0));
  });
  // When it started, by this node's clock: the run's record keeps it (and so the group's start skew).
  send({ t: "started", at: Date.now() });
}

function finish(status, startError) {
  if (exitStatus !== undefined) return;
  exitStatus = status;
  if (signalledBySlurm) return saySignalled(status);
  // What the command left running goes with it, as in a container whose init ended.
  try {
    if (child?.pid) process.kill(-child.pid, "SIGKILL");
  } catch {
    // Nothing left.
  }
  fs.writeFileSync(`${dir}/exit.tmp`, `${status}\n`);
  fs.renameSync(`${dir}/exit.tmp`, `${dir}/exit`);
  if (startError) send({ t: "failed", message: startError });
  else send({ t: "exit", code: status });
  end();
}

function stop(graceMs) {
  if (!child) {
    send({ t: "stopped" });
    return end();
  }
  if (exitStatus !== undefined) return;
  // The polite signal to the command itself (as a container's PID 1 gets it); the forced one to all it started.
  const signal = (pid, name) => {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already.
    }
  };
  signal(child.pid, "SIGTERM");
  setTimeout(() => signal(-child.pid, "SIGKILL"), graceMs).unref();
}

// Slurm signals every process of a job it ends (preemption's grace, a time limit, scancel), the command
// included: the command's end is then Slurm's doing, not its own exit. No exit file: troupe reads how the
// job ended from Slurm once Slurm has ended it (PREEMPTED, TIMEOUT, CANCELLED); the batch script waits for that.
let signalledBySlurm = false;
process.on("SIGTERM", () => {
  if (signalledBySlurm) return;
  signalledBySlurm = true;
  // First: srun may return to the batch script as soon as Slurm cancels the step, before this helper ends.
  mark("signalled", "\n");
  if (!child || exitStatus !== undefined) return saySignalled(undefined);
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    // Gone already: its exit is on its way.
  }
});

function saySignalled(status) {
  try {
    if (child?.pid) process.kill(-child.pid, "SIGKILL");
  } catch {
    // Nothing left.
  }
  mark("signalled", `${status ?? ""}\n`);
  send({ t: "signalled", code: status });
  end();
}

/** Leaves once what it said is sent (its step then ends with it). */
function end() {
  if (!socket) return process.exit(0);
  socket.end(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

// The batch script waits for every member's helper to have left (or been signalled) before it decides.
process.on("exit", () => mark("left", ""));

/** A file in the member's directory, for the batch script and troupe to see. */
function mark(name, text) {
  try {
    fs.writeFileSync(`${dir}/${name}`, text);
  } catch {
    // The run's directory is gone already (troupe closed the run): nobody waits for it.
  }
}
connect();

/**
 * The streaming masker of src/util/secret-mask.ts, here again because this file runs alone on the node:
 * every secret becomes "[MASKED]"; an end of a chunk that could begin a secret is held back for the next.
 */
function secretMasker(values) {
  const secrets = [...new Set(values)].filter((v) => [...v].length >= 8).map((v) => Buffer.from(v));
  secrets.sort((a, b) => b.length - a.length);
  const carryLength = secrets.length ? secrets[0].length - 1 : 0;
  const mask = Buffer.from("[MASKED]");
  let carry = Buffer.alloc(0);
  const run = (data, limit) => {
    const parts = [];
    let at = 0;
    for (;;) {
      let found = -1;
      let length = 0;
      for (const secret of secrets) {
        const index = data.indexOf(secret, at);
        if (index >= 0 && (found < 0 || index < found)) {
          found = index;
          length = secret.length;
        }
      }
      if (found < 0 || found >= limit) break;
      parts.push(data.subarray(at, found), mask);
      at = found + length;
      // Secrets that overlap the masked stretch go with it, whole.
      for (let grown = true; grown; ) {
        grown = false;
        for (const secret of secrets) {
          const index = data.indexOf(secret, found + 1);
          if (index >= 0 && index < at && index + secret.length > at) {
            at = index + secret.length;
            grown = true;
          }
        }
      }
    }
    const next = Math.max(at, limit);
    parts.push(data.subarray(at, next));
    return { out: Buffer.concat(parts), next };
  };
  const unfinished = (data) => {
    for (let k = Math.min(carryLength, data.length); k > 0; k--) {
      const end = data.subarray(data.length - k);
      if (secrets.some((secret) => secret.length > k && secret.subarray(0, k).equals(end))) return k;
    }
    return 0;
  };
  return {
    push(chunk) {
      if (!secrets.length) return chunk;
      const data = Buffer.concat([carry, chunk]);
      const { out, next } = run(data, data.length - unfinished(data));
      carry = Buffer.from(data.subarray(next));
      return out;
    },
    end() {
      const { out } = run(carry, carry.length);
      carry = Buffer.alloc(0);
      return out;
    },
  };
}
