// A Slurm member as a podman container on its node, for the member helper (member-helper.mjs): its launch's
// `container` ({ command, name, controlDir, image }, node-container.ts built it) is `podman run`, started once
// its image is on the node; troupe-init holds the command until the helper writes "go" into the control
// directory (here, on the node, where troupe-init's inotify sees it). The helper owns the container through fd 3
// of `podman run` (troupe-init's --owner-fd): a helper killed outright takes its container along.
// OSMO's restart in place: troupe-init's "restart KEY GRACE" request, written here; its "stopped NONCE CODE"
// answer goes to troupe, which checks the nonce; the container then waits for its next "go".
// Plain JavaScript, no imports but Node's and its masker's (copied beside it, as the helper is).
import fs from "node:fs";
import os from "node:os";
import { execFile, execFileSync, spawn } from "node:child_process";
import { writeMasked } from "./member-masker.mjs";

/**
 * The container member of `launch`. `helper`: what the member helper shares with it: `state` ({ released,
 * killed }, the helper's own), `send`, `fail(message, image)`, `finish(code, error, verdict)`, `end()`,
 * `lastLogLine()`.
 */
export function containerMember(launch, helper) {
  const { state, send } = helper;
  const { controlDir, name } = launch.container;
  let engine;
  let engineEnded = false;
  let startError;
  /** troupe-init said ready (read before the release: nothing of the task's could have written it yet). */
  let sawReady = false;
  let readyWatcher;
  /** A restart in place asked and not yet answered: the control directory watched for troupe-init's "stopped". */
  let restartWatcher;
  let lastStopped;

  async function prepare(output, masker) {
    const missing = await ensureImage(launch.container.image, launch.container.authFile);
    if (missing !== undefined || state.killed) fs.closeSync(output);
    if (missing !== undefined) return helper.fail(missing, true);
    if (state.killed) {
      send({ t: "stopped" });
      return helper.end();
    }
    const { command } = launch.container;
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
    process.on("SIGTERM", removeAndLeave);
    engine.stdio[3].on("error", () => undefined);
    // podman run has returned, so has its container: the socket no longer needs holding ('close' waits for it).
    engine.on("exit", () => engine.stdio[3].destroy());
    engine.on("error", (error) => (startError = `cannot run podman on node ${os.hostname()}: ${error.message}`));
    engine.on("close", (code, signal) => ended(code ?? 128 + (os.constants.signals[signal] ?? 0)));
    readyWatcher = fs.watch(controlDir, (_, file) => (file === null || file === "ready") && checkReady());
    checkReady();
  }

  function checkReady() {
    if (sawReady || !fs.existsSync(`${controlDir}/ready`)) return;
    sawReady = true;
    readyWatcher?.close();
    if (!state.killed) send({ t: "ready" });
  }

  function ended(code) {
    engineEnded = true;
    readyWatcher?.close();
    restartWatcher?.close();
    process.off("SIGTERM", removeAndLeave);
    if (startError) return state.released ? helper.finish(127, startError) : helper.fail(startError);
    if (!state.released) {
      if (state.killed) {
        send({ t: "stopped" });
        return helper.end();
      }
      return helper.fail(`the container did not start on node ${os.hostname()}: ${helper.lastLogLine() ?? `exit code ${code}`}`);
    }
    helper.finish(code, undefined, controlFile("verdict"));
  }

  /** Releases the command (troupe's "go": its nonce and restart key); false while troupe-init is not ready. */
  function release(go) {
    if (!sawReady) return false;
    state.released = true;
    // Written here, on the node, where troupe-init's inotify sees it at once.
    fs.writeFileSync(`${controlDir}/.go`, go);
    fs.renameSync(`${controlDir}/.go`, `${controlDir}/go`);
    return true;
  }

  /** troupe-init stops the command (SIGTERM, all killed after the grace) and says so: troupe checks its word. */
  function restart(key, graceMs) {
    if (!state.released || engineEnded || restartWatcher) return;
    const look = () => {
      const stopped = controlFile("stopped");
      if (stopped === undefined || stopped === lastStopped) return;
      lastStopped = stopped;
      // Whatever it says is troupe's to check (the task may write here too): the next "go" is troupe's answer.
      send({ t: "restarted", stopped });
    };
    restartWatcher = fs.watch(controlDir, (_, file) => (file === null || file === "stopped") && look());
    fs.writeFileSync(`${controlDir}/.restart`, `restart ${key} ${Math.max(0, Math.round(graceMs))}\n`);
    fs.renameSync(`${controlDir}/.restart`, `${controlDir}/restart`);
    look();
  }

  /** troupe took the restart: the container waits at its barrier again, for the next "go". */
  function restarted() {
    restartWatcher?.close();
    restartWatcher = undefined;
    state.released = false;
  }

  /** A file of the control directory, if it is a regular file and no link (the task may have put anything there). */
  function controlFile(file) {
    let fd;
    try {
      fd = fs.openSync(`${controlDir}/${file}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
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

  function stop(graceMs) {
    state.killed ||= !state.released;
    // Its image still being pulled: it never starts (prepare looks).
    if (!engine) return void (state.killed = true);
    if (!state.released || graceMs <= 0) return kill(0);
    // To troupe-init, which passes it to the command; a kill after the grace.
    void podman(["kill", "--signal", "SIGTERM", "--", name]);
    setTimeout(() => kill(0), graceMs).unref();
  }

  /** Again until it has ended: a kill that comes while podman is still creating the container finds none. */
  function kill(attempt) {
    state.killed = true;
    if (engineEnded || attempt >= 60) return;
    void podman(["kill", "--signal", "SIGKILL", "--", name]);
    setTimeout(() => kill(attempt + 1), 1000).unref();
  }

  function removeAndLeave() {
    try {
      execFileSync("podman", ["rm", "--force", "--time", "0", "--", name], { stdio: "ignore", timeout: 4000 });
    } catch {
      // Gone already, or podman did not answer: its owner's socket closes as this helper goes, and troupe-init ends it.
    }
    process.exit(143);
  }

  return { prepare, release, restart, restarted, stop, ready: () => sawReady };
}

/**
 * The image on this node (podman's storage is the node's), pulled when missing (with the run owner's registry
 * login, an authfile troupe wrote for this member, removed once used); why not, when it cannot be had.
 */
async function ensureImage(image, authFile) {
  const exists = (await podman(["image", "exists", "--", image])).code === 0;
  const pulled = exists ? { code: 0 } : await podman(["pull", "--quiet", ...(authFile ? ["--authfile", authFile] : []), "--", image]);
  if (authFile) fs.rmSync(authFile, { force: true });
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
