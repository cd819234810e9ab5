/**
 * Whether the container engine can start a container at all, asked once:
 * an engine that answers `podman version` may still fail every `podman run`
 * (no working OCI runtime, limits the machine does not allow), and without
 * this each task would fail on its own with the runtime's raw error. One
 * tiny start (ContainerBackend.tryStart: podman's CLI on an empty root file
 * system, about 0.2-0.4 s; an API engine with an image of troupe-init
 * alone, imported and removed) answers it; the answer is kept under
 * troupe's home, keyed by everything the engine's behaviour follows from
 * that troupe can see cheaply: for podman's CLI the binary and version, its
 * configuration files' contents, its environment (paths resolved), the OCI
 * runtimes it may use, troupe's own limits, the user, and the boot; for an
 * API engine (whose configuration is its daemon's) its address and
 * version, and the boot. A later run with the same key reads a file (about
 * a millisecond). A yes is kept for a day, a no for ten minutes (a fix the
 * key cannot see, such as a changed kernel setting or daemon, is then
 * noticed soon).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../../util/log.js";
import { builtHelper } from "../native-helpers.js";
import type { ContainerBackend } from "./backend.js";
import { PodmanCliBackend } from "./cli-backend.js";
import { engineEnvironment } from "./engine-env.js";

/** What the check found: undefined when containers start (or it could not tell), else why they do not. */
export type EngineRefusal = { reason: string; hint: string } | undefined;

const KEEP_YES_MS = 24 * 3600_000;
const KEEP_NO_MS = 10 * 60_000;
const START_TIMEOUT_MS = 60_000;
/** The engine's reason is shown on one line: about this long at most. */
const REASON_CHARS = 160;

/** Answers already had in this process, by backend (a server's pools ask again for every run). */
const asked = new WeakMap<ContainerBackend, Promise<EngineRefusal>>();

/** Whether `backend` can start containers; checked at most once per process and per key (see above). */
export function checkEngine(backend: ContainerBackend, home: string): Promise<EngineRefusal> {
  let answer = asked.get(backend);
  if (!answer) {
    answer = check(backend, home);
    asked.set(backend, answer);
  }
  return answer;
}

interface Recorded {
  started: boolean;
  reason: string;
  checkedAt: number;
}

async function check(backend: ContainerBackend, home: string): Promise<EngineRefusal> {
  const init = builtHelper("troupe-init");
  // Without troupe-init no container of troupe's starts anyway; the container runtime says so itself.
  if (init === undefined) return undefined;
  const dir = join(home, "engine-checks");
  const cli = backend instanceof PodmanCliBackend;
  const file = join(dir, `${cli ? podmanKey(backend) : apiKey(backend)}.json`);
  const refusalOf = (record: Recorded): EngineRefusal => {
    if (record.started) return undefined;
    const oneLine = record.reason.replace(/\s+/g, " ").trim() || "the engine gave no reason";
    return { reason: trimReason(oneLine), hint: cli ? podmanHint(oneLine) : apiHint() };
  };
  const now = Date.now();
  const recorded = readRecord(file);
  if (recorded && now - recorded.checkedAt < (recorded.started ? KEEP_YES_MS : KEEP_NO_MS)) return refusalOf(recorded);
  // podman reads a `:` in --rootfs's path as the start of its options (`PATH:O`).
  const rootfs = join(dir.includes(":") ? tmpdir() : dir, `troupe-rootfs-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(rootfs, { mode: 0o700 });
  } catch (error) {
    // Nowhere to check from: the tasks say what the engine says.
    log.warn({ err: error, dir }, "cannot make a directory for the engine check: the engine is not checked");
    return undefined;
  }
  let tried;
  try {
    tried = await backend.tryStart(rootfs, init, START_TIMEOUT_MS);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  if (tried === undefined) return undefined; // no answer in time: nothing is known, nothing kept
  const record: Recorded = { started: tried.started, reason: tried.reason, checkedAt: now };
  // Whole or not at all: another troupe may be reading it. Not kept, if it cannot be: asked again next time.
  const partial = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(partial, JSON.stringify(record));
    renameSync(partial, file);
  } catch (error) {
    log.warn({ err: error, file }, "cannot keep the engine check's answer: it is asked again next time");
    rmSync(partial, { force: true });
  }
  return refusalOf(record);
}

function readRecord(file: string): Recorded | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Recorded>;
    if (typeof parsed.started !== "boolean" || typeof parsed.reason !== "string" || typeof parsed.checkedAt !== "number") return undefined;
    return parsed as Recorded;
  } catch (error) {
    // None yet is the usual; one that cannot be read is checked again (and written over).
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      log.debug({ err: error, file }, "the engine check's record is unreadable: checking again");
    return undefined;
  }
}

/**
 * An engine's reason is a chain ("runc: runc create failed: unable to start
 * container process: ...: operation not permitted"): its first link says
 * who, its last ones what; the middle goes when the whole is too long.
 */
export function trimReason(reason: string): string {
  if (reason.length <= REASON_CHARS) return reason;
  const links = reason.split(": ");
  const first = links.shift()!;
  const kept: string[] = [];
  while (links.length > 0 && first.length + 5 + [links.at(-1)!, ...kept].join(": ").length <= REASON_CHARS) kept.unshift(links.pop()!);
  if (kept.length === 0) return `${reason.slice(0, REASON_CHARS - 1)}…`;
  return links.length === 0 ? [first, ...kept].join(": ") : `${first}: …: ${kept.join(": ")}`;
}

/** How to make podman start containers, for the reasons met on real machines; else the general way. */
export function podmanHint(reason: string): string {
  if (/rlimit/i.test(reason))
    return 'lower its default_ulimits to what this machine allows (e.g. ["nofile=20000:20000"]) in a containers.conf that CONTAINERS_CONF names';
  if (/crun/i.test(reason) && /cgroup/i.test(reason))
    return 'set [engine] runtime = "runc" in a containers.conf that CONTAINERS_CONF names';
  return "make `podman run --rm IMAGE true` work here (see containers.conf(5))";
}

function apiHint(): string {
  return "make `docker run --rm IMAGE true` work against that engine (its daemon's configuration)";
}

/** An API engine's: what troupe can see of it (its daemon's configuration is its own). */
function apiKey(backend: ContainerBackend): string {
  const hash = createHash("sha256").update(`api\0${backend.describe()}\0`);
  hash.update(`${process.getuid?.()}\0`).update(fileContents("/proc/sys/kernel/random/boot_id"));
  return hash.digest("hex").slice(0, 32);
}

/** Everything podman's answer follows from that can be read without starting a process. */
function podmanKey(backend: PodmanCliBackend): string {
  const env = engineEnvironment();
  const hash = createHash("sha256");
  const add = (label: string, value: string | Buffer) => hash.update(`${label}\0`).update(value).update("\0");
  add("binary", backend.binary);
  add("binary-file", fileStamp(backend.binary));
  add("version", backend.version);
  add("user", `${process.getuid?.()}:${process.getgid?.()}`);
  for (const name of Object.keys(env).sort())
    if (/^(CONTAINERS?_|XDG_|REGISTR|DOCKER_|STORAGE_|TMPDIR$|HOME$|PATH$)/.test(name)) add(`env ${name}`, env[name] ?? "");
  for (const path of configFiles(env)) add(`file ${path}`, fileContents(path));
  for (const name of ["runc", "crun", "conmon", "netavark"])
    for (const dir of searchDirs(env)) add(`tool ${dir}/${name}`, fileStamp(join(dir, name)));
  // troupe's own limits are the container's ceiling (a default ulimit above them fails every start).
  add("limits", fileContents("/proc/self/limits"));
  add("boot", fileContents("/proc/sys/kernel/random/boot_id"));
  return hash.digest("hex").slice(0, 32);
}

/** The containers.conf and storage.conf files podman may read, given its environment. */
function configFiles(env: NodeJS.ProcessEnv): string[] {
  const userConfig = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  const files = [
    env.CONTAINERS_CONF,
    env.CONTAINERS_CONF_OVERRIDE,
    env.CONTAINERS_STORAGE_CONF,
    "/usr/share/containers/containers.conf",
    "/etc/containers/containers.conf",
    join(userConfig, "containers/containers.conf"),
    "/usr/share/containers/storage.conf",
    "/etc/containers/storage.conf",
    join(userConfig, "containers/storage.conf"),
  ].filter((f): f is string => f !== undefined && f !== "");
  for (const dir of [
    "/usr/share/containers/containers.conf.d",
    "/etc/containers/containers.conf.d",
    join(userConfig, "containers/containers.conf.d"),
  ])
    files.push(...listDir(dir).map((name) => join(dir, name)));
  return files;
}

function searchDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs = (env.PATH ?? "").split(":").filter((d) => d.startsWith("/"));
  return [...new Set([...dirs, "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/libexec/podman", "/usr/lib/podman"])];
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    // No such directory on this machine: part of what the key records.
    return [];
  }
}

function fileContents(path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch {
    // No such file (or not ours to read): part of what the key records.
    return "(none)";
  }
}

function fileStamp(path: string): string {
  try {
    const real = realpathSync(path);
    const stat = statSync(real);
    return `${real} ${stat.size} ${stat.mtimeMs} ${stat.ino}`;
  } catch {
    // No such file: part of what the key records.
    return "(none)";
  }
}
