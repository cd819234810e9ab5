// One member of a troupe group on a Slurm node. The group's batch script starts one step whose every task
// runs this helper (`srun node member-helper.mjs MEMBERS_FILE`); task SLURM_PROCID is member number
// SLURM_PROCID of the file (one key and directory per line). The helper:
//   connects back to troupe (the address in the run's `listener` file on the shared file system) and says
//   where it is (hello: its key, node, job, Slurm's GPU variables), which troupe reports as the member's placement;
//   waits for its launch: the command line of the member's host sandbox (bubblewrap, its arguments computed by
//   troupe: runtime/slurm/node-sandbox.ts; tokens resolve only once every member is placed) and its log file;
//   starts the sandbox at once, as the host runtime does (runtime/host/sandbox-process.ts): bwrap's JSON status
//   on fd 3, its barrier on fd 4, so that the sandbox is set up before the group's barrier opens; says ready
//   once bwrap names the sandbox's PID 1, waits for "go", writes it to the barrier (the command starts), and
//   writes the command's exit status (bwrap's "exit-code") to the member's `exit` file before saying it;
//   stops the command when told (SIGTERM to it, SIGKILL to the sandbox's PID 1 after the grace, which ends
//   every process of its PID namespace); a sandbox stopped at the barrier is killed at once.
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

/** Slurm's variables for the task's GPUs (as it set them for this task), which troupe passes into the sandbox. */
const GPU_VARIABLES = [
  "CUDA_VISIBLE_DEVICES",
  "GPU_DEVICE_ORDINAL",
  "ROCR_VISIBLE_DEVICES",
  "ZE_AFFINITY_MASK",
  "SLURM_STEP_GPUS",
  "SLURM_JOB_GPUS",
];
const gpuEnv = Object.fromEntries(GPU_VARIABLES.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]]));
/** The sandbox's status channel and barrier (bwrap's --json-status-fd and --block-fd, as troupe wrote them). */
const STATUS_FD = 3;
const BLOCK_FD = 4;
/** How long a sandbox whose PID 1 was killed may take to end before bwrap itself is killed. */
const KILL_CONFIRM_MS = 2000;

let socket;
/** What troupe sent: { sandbox: [bwrap, ...args], logPath, orphanMs }. */
let launch;
/** bwrap, started at the launch; its command held at the barrier until "go". */
let sandbox;
/** The sandbox's PID 1 (bwrap's child-pid): the command is its child. */
let sandboxPid;
let startError;
let released = false;
/** The command's exit code, as bwrap's status says it. */
let commandExit;
/** A stop asked: the sandbox is being killed. */
let killed = false;
let exitStatus;
let orphanTimer;

const send = (message) => socket?.writable && socket.write(`${JSON.stringify(message)}\n`);
const sayState = () => {
  if (exitStatus !== undefined) send({ t: "exit", code: exitStatus });
  else if (released) send({ t: "started", again: true });
  else if (sandboxPid !== undefined) send({ t: "ready" });
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
    send({ t: "hello", token, key, node: os.hostname(), job, running: released, gpuEnv });
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
    if (!keep) orphanTimer ??= setTimeout(() => (sandbox ? stop(launch?.graceMs ?? 5000) : process.exit(0)), launch?.orphanMs ?? 30000);
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
  launch = given;
  let output;
  try {
    fs.mkdirSync(launch.logPath.slice(0, launch.logPath.lastIndexOf("/")) || "/", { recursive: true });
    output = fs.openSync(launch.logPath, "a");
  } catch (error) {
    return fail(`cannot open its log ${launch.logPath}: ${error.message}`);
  }
  const stdio = ["ignore", output, output];
  stdio[STATUS_FD] = "pipe";
  stdio[BLOCK_FD] = "pipe";
  try {
    sandbox = spawn(launch.sandbox[0], launch.sandbox.slice(1), { stdio, detached: true });
  } finally {
    fs.closeSync(output);
  }
  // EPIPE as the sandbox ends: its exit says how it ended.
  sandbox.stdio[STATUS_FD].on("error", () => undefined);
  sandbox.stdio[BLOCK_FD].on("error", () => undefined);
  let buffer = "";
  sandbox.stdio[STATUS_FD].on("data", (data) => {
    buffer += data;
    for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      if (line) status(JSON.parse(line));
    }
  });
  sandbox.on("error", (error) => {
    startError = `cannot start ${launch.sandbox[0]} on node ${os.hostname()}: ${error.message}`;
    if (error.code === "ENOENT")
      startError += " (troupe runs Slurm tasks in bubblewrap on their nodes: install it there, apt-get install bubblewrap)";
  });
  sandbox.on("close", (code, signal) => sandboxEnded(code ?? 128 + (os.constants.signals[signal] ?? 0)));
}

/** bwrap's status channel: the sandbox's PID 1 (it is set up, its command waits at the barrier), the command's exit code. */
function status(message) {
  if (typeof message["child-pid"] === "number" && sandboxPid === undefined) {
    sandboxPid = message["child-pid"];
    if (killed) signal(sandboxPid, "SIGKILL");
    else send({ t: "ready" });
  }
  if (typeof message["exit-code"] === "number") commandExit = message["exit-code"];
}

function sandboxEnded(code) {
  if (startError) return released ? finish(127, startError) : fail(startError);
  if (!released) {
    if (!killed) return fail(setupFailure());
    send({ t: "stopped" });
    return end();
  }
  // Killed with its sandbox (a forced stop): its PID 1 had no time to report the command's end.
  if (commandExit === undefined && killed) return finish(128 + 9);
  if (commandExit === undefined) return finish(code, setupFailure());
  finish(commandExit);
}

/** bwrap's own complaint, the last line of the log when the command never ran. */
function setupFailure() {
  let line;
  try {
    const fd = fs.openSync(launch.logPath, "r");
    const size = fs.fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 2000));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    fs.closeSync(fd);
    line = tail.toString().trim().split("\n").pop();
  } catch {
    // No log: the general reason below.
  }
  return line
    ? `sandbox setup failed on node ${os.hostname()}: ${line}`
    : `the sandbox ended before its command started on node ${os.hostname()}`;
}

function fail(message) {
  send({ t: "failed", message });
  end();
}

function start() {
  if (!launch || released || sandboxPid === undefined || exitStatus !== undefined) return;
  released = true;
  sandbox.stdio[BLOCK_FD].end("go");
  send({ t: "started" });
}

function finish(status, error) {
  if (exitStatus !== undefined) return;
  exitStatus = status;
  fs.writeFileSync(`${dir}/exit.tmp`, `${status}\n`);
  fs.renameSync(`${dir}/exit.tmp`, `${dir}/exit`);
  if (error) send({ t: "failed", message: error });
  else send({ t: "exit", code: status });
  end();
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/** The command: the sandbox's PID 1's child. */
function commandPid() {
  if (sandboxPid === undefined) return undefined;
  try {
    const first = Number(fs.readFileSync(`/proc/${sandboxPid}/task/${sandboxPid}/children`, "utf8").trim().split(" ")[0]);
    return Number.isInteger(first) && first > 0 ? first : undefined;
  } catch {
    return undefined; // the sandbox has ended
  }
}

function stop(graceMs) {
  if (exitStatus !== undefined) return;
  if (!sandbox) {
    send({ t: "stopped" });
    return end();
  }
  // The polite signal to the command itself (as a container's PID 1 passes it on); the forced one to its sandbox.
  const command = released ? commandPid() : undefined;
  if (graceMs > 0 && command !== undefined) {
    signal(command, "SIGTERM");
    setTimeout(killSandbox, graceMs).unref();
  } else killSandbox();
}

/** SIGKILL to the sandbox's PID 1 ends every process of its PID namespace; bwrap then reports its end. */
function killSandbox() {
  killed = true;
  // Not set up yet: bwrap itself (its child dies with it, --die-with-parent).
  signal(sandboxPid ?? sandbox.pid, "SIGKILL");
  setTimeout(() => signal(sandbox.pid, "SIGKILL"), KILL_CONFIRM_MS).unref();
}

/** Leaves once what it said is sent (its step then ends with it). */
function end() {
  if (!socket) return process.exit(0);
  socket.end(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

connect();
