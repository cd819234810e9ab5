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
// Plain JavaScript, no imports but Node's and its masker's (member-masker.mjs, copied beside it as
// member-masker-HASH.mjs, the name this import is given in the copy): it runs from the shared file
// system with the node's `node`.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import { execFile, execFileSync, spawn } from "node:child_process";
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
let released = false;
/** The command's exit code, as bwrap's status says it. */
let commandExit;
/** A stop asked: the sandbox is being killed. */
let killed = false;
let exitStatus;
let orphanTimer;
// A container member (its launch's `container`: { command, name, controlDir, image }): podman run, started once
// its image is on the node; troupe-init holds the command until the helper writes "go" into the control directory.
let engine;
let engineEnded = false;
/** troupe-init said ready (read before the release: nothing of the task's could have written it yet). */
let sawReady = false;
let readyWatcher;

const send = (message) => socket?.writable && socket.write(`${JSON.stringify(message)}\n`);
const sayState = () => {
  if (exitStatus !== undefined) send({ t: "exit", code: exitStatus });
  else if (released) send({ t: "started", again: true });
  else if (sandboxPid !== undefined || sawReady) send({ t: "ready" });
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
  if (launch.container) return void prepareContainer(output, masker);
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
    if (killed) signal(sandboxPid, "SIGKILL");
    else send({ t: "ready" });
  }
  if (typeof message["exit-code"] === "number") commandExit = message["exit-code"];
}

function sandboxEnded(code) {
  if (signalledBySlurm && !released) return saySignalled(undefined);
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
  if (!launch || released || exitStatus !== undefined) return;
  if (launch.container) {
    if (!sawReady) return;
    released = true;
    // Written here, on the node, where troupe-init's inotify sees it at once.
    const ctl = launch.container.controlDir;
    const at = Date.now();
    fs.writeFileSync(`${ctl}/.go`, message.go);
    fs.renameSync(`${ctl}/.go`, `${ctl}/go`);
    return send({ t: "started", at });
  }
  if (sandboxPid === undefined) return;
  released = true;
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

// ---- a container member

async function prepareContainer(output, masker) {
  const { command, controlDir, image } = launch.container;
  const missing = await ensureImage(image);
  if (missing !== undefined || killed) fs.closeSync(output);
  if (missing !== undefined) return fail(missing, true);
  if (killed) {
    send({ t: "stopped" });
    return end();
  }
  try {
    // In the control directory: conmon writes its `oom` file where podman runs.
    // fd 3: the container's owner's socket (node-container.ts); this end stays here, the container ends with it.
    const stdio = masker ? ["ignore", "pipe", "pipe", "pipe"] : ["ignore", output, output, "pipe"];
    engine = spawn(command[0], command.slice(1), { cwd: controlDir, stdio, detached: true });
  } finally {
    if (!masker) fs.closeSync(output);
  }
  if (masker) writeMasked(engine, output, masker);
  // A cancel (scancel) signals the step's processes, which the container is not (conmon left the step): it goes here.
  process.on("SIGTERM", removeContainerAndLeave);
  engine.stdio[3].on("error", () => undefined);
  // podman run has returned, so has its container: the socket no longer needs holding ('close' waits for it).
  engine.on("exit", () => engine.stdio[3].destroy());
  engine.on("error", (error) => (startError = `cannot run podman on node ${os.hostname()}: ${error.message}`));
  engine.on("close", (code, signal) => containerEnded(code ?? 128 + (os.constants.signals[signal] ?? 0)));
  readyWatcher = fs.watch(controlDir, (_, file) => (file === null || file === "ready") && checkReady());
  checkReady();
}

/** The image on this node (podman's storage is the node's), pulled when missing; why not, when it cannot be had. */
async function ensureImage(image) {
  if ((await podman(["image", "exists", "--", image])).code === 0) return undefined;
  const pulled = await podman(["pull", "--quiet", "--", image]);
  if (pulled.code === 0) return undefined;
  const said = pulled.stderr.trim().split("\n").filter(Boolean).pop() ?? `exit code ${pulled.code}`;
  return `cannot pull ${image} on node ${os.hostname()}: ${said.replace(/^Error: /, "")}`;
}

function podman(args) {
  return new Promise((resolve) =>
    execFile("podman", args, { timeout: 600_000, maxBuffer: 1 << 20 }, (error, _stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr: String(stderr || error?.message || "") }),
    ),
  );
}

function checkReady() {
  if (sawReady || !fs.existsSync(`${launch.container.controlDir}/ready`)) return;
  sawReady = true;
  readyWatcher?.close();
  if (!killed) send({ t: "ready" });
}

function containerEnded(code) {
  engineEnded = true;
  readyWatcher?.close();
  process.off("SIGTERM", removeContainerAndLeave);
  if (startError) return released ? finish(127, startError) : fail(startError);
  if (!released) {
    if (killed) {
      send({ t: "stopped" });
      return end();
    }
    return fail(`the container did not start on node ${os.hostname()}: ${lastLogLine() ?? `exit code ${code}`}`);
  }
  finish(code, undefined, controlFile("verdict"));
}

/** A file of the control directory, if it is a regular file and no link (the task may have put anything there). */
function controlFile(name) {
  let fd;
  try {
    fd = fs.openSync(`${launch.container.controlDir}/${name}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined; // none
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return undefined;
    const buffer = Buffer.alloc(512);
    return buffer.subarray(0, fs.readSync(fd, buffer, 0, buffer.length, 0)).toString();
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function stopContainer(graceMs) {
  killed ||= !released;
  // Its image still being pulled: it never starts (prepareContainer looks).
  if (!engine) return void (killed = true);
  if (!released || graceMs <= 0) return killContainer(0);
  // To troupe-init, which passes it to the command; a kill after the grace.
  void podman(["kill", "--signal", "SIGTERM", "--", launch.container.name]);
  setTimeout(() => killContainer(0), graceMs).unref();
}

/** Again until it has ended: a kill that comes while podman is still creating the container finds none. */
function killContainer(attempt) {
  killed = true;
  if (engineEnded || attempt >= 60) return;
  void podman(["kill", "--signal", "SIGKILL", "--", launch.container.name]);
  setTimeout(() => killContainer(attempt + 1), 1000).unref();
}

function removeContainerAndLeave() {
  try {
    execFileSync("podman", ["rm", "--force", "--time", "0", "--", launch.container.name], { stdio: "ignore", timeout: 4000 });
  } catch {
    // Gone already, or podman did not answer: nothing more can be done before Slurm's SIGKILL.
  }
  process.exit(143);
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
  if (launch?.container) return stopContainer(graceMs);
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
  // A container: removeContainerAndLeave (its own SIGTERM listener) removes it and leaves.
  if (launch?.container) return;
  if (!sandbox || exitStatus !== undefined) return saySignalled(undefined);
  if (!released) return killSandbox();
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
