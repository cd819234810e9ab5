// One member of a troupe group on a Slurm node. The group's batch script starts one step whose every task
// runs this helper (`srun node member-helper.mjs MEMBERS_FILE`); task SLURM_PROCID is member number
// SLURM_PROCID of the file (one key and directory per line). The helper connects back to troupe (the address
// in the run's `listener` file on the shared file system), says where it is (hello: key, node, job, Slurm's
// GPU variables: the member's placement), and waits for its launch (tokens resolve once every member is placed):
//   its host sandbox, bwrap's command line computed by troupe (node-sandbox.ts), started at once as the host
//   runtime does (status on fd 3, barrier on fd 4): ready once bwrap names the sandbox's PID 1;
//   or its container (node-container.ts): the image pulled here when missing, `podman run` started: ready once
//   troupe-init writes `ready` in the control directory.
// On "go" it releases the command (the barrier fd, or troupe-init's `go` file, written here where its inotify
// sees it) and writes the exit status to the member's `exit` file before saying it (with troupe-init's
// verdict, which troupe checks). A stop is SIGTERM to the command, SIGKILL to the sandbox's PID 1 (its whole
// PID namespace) or the container after the grace; at the barrier, SIGKILL at once. A container is no process
// of the step (conmon leaves it): on Slurm's SIGTERM (scancel) the helper removes it before it goes.
// Its connection may break (troupe restarted): the command goes on, and the helper connects again to
// whatever address the `listener` file names next. A run whose tasks must not outlive troupe (not `keep`)
// ends its command when troupe is gone for longer than the launch's `orphanMs`.
// OSMO's restart in place, for a container: troupe-init stops the command and waits for the next "go"
// (member-container.mjs). Plain JavaScript, no imports but Node's and its own modules' (member-container.mjs,
// member-masker.mjs, copied beside it as NAME-HASH.mjs, the names these imports are given in the copies): it
// runs from the shared file system with the node's `node`.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import { spawn } from "node:child_process";
import { containerMember } from "./member-container.mjs";
import { secretMasker, writeMasked } from "./member-masker.mjs";

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
/** Shared with a container member (member-container.mjs): released to its command; a stop asked (being killed). */
const state = { released: false, killed: false };
/** The command's exit code, as bwrap's status says it. */
let commandExit;
let exitStatus;
let orphanTimer;
/** A container member (its launch's `container`): member-container.mjs. */
let container;

const send = (message) => socket?.writable && socket.write(`${JSON.stringify(message)}\n`);
const sayState = () => {
  if (exitStatus !== undefined) send({ t: "exit", code: exitStatus });
  else if (state.released) send({ t: "started", again: true });
  else if (sandboxPid !== undefined || container?.ready()) send({ t: "ready" });
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
    send({ t: "hello", token, key, node: os.hostname(), job, running: state.released, gpuEnv });
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
    if (!keep)
      orphanTimer ??= setTimeout(
        () => (sandbox || launch?.container ? stop(launch?.graceMs ?? 5000) : process.exit(0)),
        launch?.orphanMs ?? 30000,
      );
    // troupe restarted: a new listener, named in the same file.
    setTimeout(connect, 500);
  });
}

function handle(message) {
  if (message.t === "launch") prepare(message.launch);
  else if (message.t === "go") start(message);
  else if (message.t === "stop") stop(message.graceMs);
  // OSMO's restart in place (a container's: troupe-init keeps the container for the next "go").
  else if (message.t === "restart") container?.restart(message.key, message.graceMs);
  else if (message.t === "restarted") container?.restarted();
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
  // With secrets to mask (the task's credentials'), its output comes through this helper to the log.
  const masker = launch.secrets?.length ? secretMasker(launch.secrets) : undefined;
  if (launch.container) {
    container = containerMember(launch, { state, send, fail, finish, end, lastLogLine });
    return void container.prepare(output, masker);
  }
  const stdio = masker ? ["ignore", "pipe", "pipe"] : ["ignore", output, output];
  stdio[STATUS_FD] = "pipe";
  stdio[BLOCK_FD] = "pipe";
  try {
    sandbox = spawn(launch.sandbox[0], launch.sandbox.slice(1), { stdio, detached: true });
  } finally {
    if (!masker) fs.closeSync(output);
  }
  if (masker) writeMasked(sandbox, output, masker);
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
  sandbox.on("close", (code, signal) => {
    // troupe only ever SIGKILLs a sandbox: a SIGTERM is Slurm's, which may reach bwrap before this helper hears of it.
    if (signal === "SIGTERM") slurmSignalled();
    sandboxEnded(code ?? 128 + (os.constants.signals[signal] ?? 0));
  });
}

/** bwrap's status channel: the sandbox's PID 1 (it is set up, its command waits at the barrier), the command's exit code. */
function status(message) {
  if (typeof message["child-pid"] === "number" && sandboxPid === undefined) {
    sandboxPid = message["child-pid"];
    if (state.killed) signal(sandboxPid, "SIGKILL");
    else send({ t: "ready" });
  }
  if (typeof message["exit-code"] === "number") commandExit = message["exit-code"];
}

function sandboxEnded(code) {
  if (signalledBySlurm && !state.released) return saySignalled(undefined);
  if (startError) return state.released ? finish(127, startError) : fail(startError);
  if (!state.released) {
    if (!state.killed) return fail(setupFailure());
    send({ t: "stopped" });
    return end();
  }
  // Killed with its sandbox (a forced stop): its PID 1 had no time to report the command's end.
  if (commandExit === undefined && state.killed) return finish(128 + 9);
  if (commandExit === undefined) return finish(code, setupFailure());
  finish(commandExit);
}

/** The last line of the member's log: bwrap's or podman's complaint when the command never ran. */
function lastLogLine() {
  try {
    const fd = fs.openSync(launch.logPath, "r");
    const size = fs.fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 2000));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    fs.closeSync(fd);
    return tail.toString().trim().split("\n").pop() || undefined;
  } catch {
    return undefined; // no log
  }
}

function setupFailure() {
  const line = lastLogLine();
  return line
    ? `sandbox setup failed on node ${os.hostname()}: ${line}`
    : `the sandbox ended before its command started on node ${os.hostname()}`;
}

/** `image`: the member's image could not be had on this node. */
function fail(message, image) {
  send({ t: "failed", message, ...(image && { image: true }) });
  end();
}

function start(message) {
  if (!launch || state.released || exitStatus !== undefined) return;
  if (container) {
    // When the command is released, by this node's clock (the record's start time, and the group's start skew).
    const at = Date.now();
    if (container.release(message.go)) send({ t: "started", at });
    return;
  }
  if (sandboxPid === undefined) return;
  state.released = true;
  // When the command starts, by this node's clock (before the release: it may run before end() returns);
  // the run's record keeps it, and so the group's start skew.
  const at = Date.now();
  sandbox.stdio[BLOCK_FD].end("go");
  send({ t: "started", at });
}

/** `verdict`: a container's troupe-init's, which troupe checks against the release's nonce. */
function finish(status, error, verdict, waited) {
  if (exitStatus !== undefined) return;
  // A command ended by SIGTERM that troupe did not ask for: most likely Slurm's, whose signal to this helper may
  // come a moment after the command's end. Waited for, briefly, before the end is taken as the command's own.
  if (status === 128 + 15 && !stopAsked && !signalledBySlurm && !waited)
    return void setTimeout(() => finish(status, error, verdict, true), 500);
  exitStatus = status;
  if (signalledBySlurm) return saySignalled(status);
  fs.writeFileSync(`${dir}/exit.tmp`, `${status}\n`);
  fs.renameSync(`${dir}/exit.tmp`, `${dir}/exit`);
  if (error) send({ t: "failed", message: error });
  else send({ t: "exit", code: status, ...(verdict !== undefined && { verdict }) });
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
  stopAsked = true;
  if (exitStatus !== undefined) return;
  if (container) return container.stop(graceMs);
  if (!sandbox) {
    send({ t: "stopped" });
    return end();
  }
  // The polite signal to the command itself (as a container's PID 1 passes it on); the forced one to its sandbox.
  const command = state.released ? commandPid() : undefined;
  if (graceMs > 0 && command !== undefined) {
    signal(command, "SIGTERM");
    setTimeout(killSandbox, graceMs).unref();
  } else killSandbox();
}

/** SIGKILL to the sandbox's PID 1 ends every process of its PID namespace; bwrap then reports its end. */
function killSandbox() {
  state.killed = true;
  // Not set up yet: bwrap itself (its child dies with it, --die-with-parent).
  signal(sandboxPid ?? sandbox.pid, "SIGKILL");
  setTimeout(() => signal(sandbox.pid, "SIGKILL"), KILL_CONFIRM_MS).unref();
}

// Slurm signals every process of a job it ends (preemption's grace, a time limit, scancel), the command
// included: the command's end is then Slurm's doing, not its own exit. No exit file: troupe reads how the
// job ended from Slurm once Slurm has ended it (PREEMPTED, TIMEOUT, CANCELLED); the batch script waits for that.
let signalledBySlurm = false;
/** troupe asked for a stop: a SIGTERM the command then dies of is troupe's. */
let stopAsked = false;

/** Slurm signalled the step: said first (srun may return to the batch script before this helper ends). */
function slurmSignalled() {
  if (signalledBySlurm) return false;
  signalledBySlurm = true;
  mark("signalled", "\n");
  return true;
}

process.on("SIGTERM", () => {
  if (!slurmSignalled()) return;
  // A container: its own SIGTERM listener (member-container.mjs) removes it and leaves.
  if (container) return;
  if (!sandbox || exitStatus !== undefined) return saySignalled(undefined);
  if (!state.released) return killSandbox();
  // The command has it from Slurm too; its sandbox's end (sandboxEnded, finish) says the rest.
  const command = commandPid();
  if (command !== undefined) signal(command, "SIGTERM");
});

function saySignalled(status) {
  mark("signalled", `${status ?? ""}\n`);
  send({ t: "signalled", code: status });
  end();
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

/** Leaves once what it said is sent (its step then ends with it). */
function end() {
  if (!socket) return process.exit(0);
  socket.end(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

connect();
