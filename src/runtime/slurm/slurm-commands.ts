/**
 * The Slurm commands the runtime uses (docs/slurm-notes.md says why these
 * and their formats): sbatch, squeue, scancel, sinfo, each run with the
 * pool's environment (SLURM_CONF for a cluster of its own) and read through
 * `-o` formats, never `--json` (it ignores filters in 22.05 and changes with
 * the version).
 */
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

export class SlurmCommandError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** Runs `command args` with `env`; its stdout, or a SlurmCommandError with its stderr. */
export function slurmCommand(env: NodeJS.ProcessEnv, command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const why = stderr.trim() || error.message;
      reject(new SlurmCommandError(`${command} ${args.join(" ")}: ${why}`, stderr));
    });
  });
}

/** Submits a batch script; the job id (`ID`, or `ID;cluster` on a federation). */
export async function submitJob(env: NodeJS.ProcessEnv, args: readonly string[], script: string): Promise<string> {
  const out = await slurmCommand(env, "sbatch", ["--parsable", ...args, script]);
  const id = out.trim().split(";")[0]!;
  if (!/^\d+$/.test(id)) throw new SlurmCommandError(`sbatch printed no job id: ${out.trim()}`, "");
  return id;
}

/** How often the output of a starting `salloc` is read for its job id (it says it within milliseconds). */
const ALLOCATION_POLL_MS = 5;
/** How long `salloc` may take to say its job id (it says it before it waits for the allocation). */
const ALLOCATION_ID_LIMIT_MS = 60_000;

/**
 * Starts `argv` (a `salloc ... COMMAND`) apart from troupe (its own session: a Ctrl-C at troupe's terminal is
 * troupe's to handle; it outlives troupe, its command then ends with the helpers'), its output to the file
 * `output`; the job id, once salloc says it ("Pending job allocation N" or "Granted job allocation N"), or a
 * SlurmCommandError with what salloc said when it ends without one (a request Slurm refuses).
 */
export function allocate(env: NodeJS.ProcessEnv, argv: readonly string[], output: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const fd = openSync(output, "a");
    let child;
    try {
      child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    child.unref();
    const said = () => {
      try {
        return readFileSync(output, "utf8");
      } catch {
        return "";
      }
    };
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const settle = (error?: Error, id?: string) => {
      clearTimeout(timer);
      child.removeAllListeners().on("error", () => undefined);
      if (error) reject(error);
      else resolve(id!);
    };
    const look = () => {
      const id = /job allocation (\d+)/.exec(said())?.[1];
      if (id) return settle(undefined, id);
      if (Date.now() - started > ALLOCATION_ID_LIMIT_MS) {
        child.kill("SIGKILL");
        return settle(new SlurmCommandError(`${argv[0]} said no job id in ${ALLOCATION_ID_LIMIT_MS / 1000} s: ${said().trim()}`, said()));
      }
      timer = setTimeout(look, ALLOCATION_POLL_MS);
    };
    child.once("error", (error) => settle(new SlurmCommandError(`${argv[0]}: ${error.message}`, "")));
    child.once("exit", () => {
      const text = said();
      const id = /job allocation (\d+)/.exec(text)?.[1];
      if (id) return settle(undefined, id);
      const why = text.trim() || "it ended without a word";
      settle(new SlurmCommandError(`${argv.slice(0, -2).join(" ")}: ${why}`, text));
    });
    look();
  });
}

/** Cancels jobs (every step and task: SIGTERM, SIGKILL after KillWait); ids Slurm no longer knows are fine. */
export async function cancelJobs(env: NodeJS.ProcessEnv, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  try {
    await slurmCommand(env, "scancel", [...ids]);
  } catch (error) {
    // scancel says so, and exits 1, for a job that already ended and was purged: it is gone, as asked.
    if (!(error instanceof SlurmCommandError) || !/Invalid job id|already completing or completed/i.test(error.message)) throw error;
  }
}

/** A job as squeue shows it. */
export interface JobLine {
  /** The id, with `+offset` for a heterogeneous job's components. */
  id: string;
  name: string;
  /** PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, NODE_FAIL, PREEMPTED, TIMEOUT, OUT_OF_MEMORY, ... */
  state: string;
  reason: string;
  nodes: string;
  comment: string;
}

const JOB_FORMAT = "%i|%j|%T|%r|%N|%k";

function parseJobLines(text: string): JobLine[] {
  return text
    .split("\n")
    .filter((line) => line.includes("|"))
    .map((line) => {
      const [id = "", name = "", state = "", reason = "", nodes = "", ...comment] = line.split("|");
      return { id, name, state, reason, nodes, comment: comment.join("|") };
    });
}

/**
 * The jobs `ids` as slurmctld still knows them (finished ones too, for
 * MinJobAge after their end); a job it has forgotten is absent. Components of
 * a heterogeneous job come as `ID+N`: the first one's line stands for the job.
 */
export async function jobStates(env: NodeJS.ProcessEnv, ids: readonly string[]): Promise<Map<string, JobLine>> {
  const found = new Map<string, JobLine>();
  if (ids.length === 0) return found;
  let lines: JobLine[];
  try {
    lines = parseJobLines(await slurmCommand(env, "squeue", ["-h", "-t", "all", "-j", ids.join(","), "-o", JOB_FORMAT]));
  } catch (error) {
    if (!(error instanceof SlurmCommandError) || !/Invalid job id/i.test(error.message)) throw error;
    // One forgotten id fails the whole query: ask one by one.
    if (ids.length > 1) for (const id of ids) for (const [k, v] of await jobStates(env, [id])) found.set(k, v);
    return found;
  }
  for (const line of lines) {
    const id = line.id.split("+")[0]!;
    const known = found.get(id);
    // A heterogeneous job's components: the least advanced stands for the job (one pending keeps it pending).
    if (!known || stage(line.state) < stage(known.state)) found.set(id, line);
  }
  return found;
}

const LIVE_STATES = ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING"];

function stage(state: string): number {
  return LIVE_STATES.includes(state) ? LIVE_STATES.indexOf(state) : LIVE_STATES.length;
}

/**
 * This user's jobs that have not ended (pending, running; not those already completing) whose comment
 * starts with `prefix` (troupe's own, of one home): one line per job, a heterogeneous job's first component's.
 */
export async function jobsWithComment(env: NodeJS.ProcessEnv, user: string, prefix: string): Promise<JobLine[]> {
  const lines = parseJobLines(await slurmCommand(env, "squeue", ["-h", "-u", user, "-o", JOB_FORMAT]));
  const jobs = new Map<string, JobLine>();
  for (const line of lines) {
    const id = line.id.split("+")[0]!;
    if (line.comment.startsWith(prefix) && line.state !== "COMPLETING" && !jobs.has(id)) jobs.set(id, { ...line, id });
  }
  return [...jobs.values()];
}

/** A node as sinfo shows it. */
export interface SlurmNode {
  name: string;
  cpus: number;
  memoryMb: number;
  gpus: number;
  /** Compact state: idle, mix, alloc, drain, down*, ... */
  state: string;
  address: string;
  partitions: string[];
  /** The partition marked default (`main*`). */
  defaultPartition?: string;
}

/** Every node, one line each (a node in two partitions: one line per partition, merged). */
export async function readNodes(env: NodeJS.ProcessEnv): Promise<SlurmNode[]> {
  const text = await slurmCommand(env, "sinfo", ["-N", "-h", "-o", "%N|%c|%m|%G|%t|%o|%P"]);
  return parseNodes(text);
}

export function parseNodes(text: string): SlurmNode[] {
  const nodes = new Map<string, SlurmNode>();
  for (const line of text.split("\n")) {
    const [name, cpus, memory, gres, state, address, partition] = line.trim().split("|");
    if (!name || partition === undefined) continue;
    const node = nodes.get(name) ?? {
      name,
      cpus: Number(cpus),
      memoryMb: Number(memory),
      gpus: gpuCount(gres ?? ""),
      state: state ?? "",
      address: address ?? name,
      partitions: [],
    };
    const isDefault = partition.endsWith("*");
    const partitionName = partition.replace(/\*$/, "");
    node.partitions.push(partitionName);
    if (isDefault) node.defaultPartition = partitionName;
    nodes.set(name, node);
  }
  return [...nodes.values()];
}

/** GPUs in a gres string: `gpu:2`, `gpu:a100:4(S:0-1)`, `(null)`. */
function gpuCount(gres: string): number {
  let count = 0;
  for (const part of gres.split(",")) {
    const m = /^gpu(?::[^:(]+)?:(\d+)/.exec(part.trim());
    if (m) count += Number(m[1]);
  }
  return count;
}
