/**
 * The batch job of a group's members, decided from what they ask: one job
 * (Slurm's gang allocation: all members or none), whose script starts one
 * step with a task per member, each running the member helper. Members that
 * ask alike are one job of K tasks, on K distinct nodes (`spread: nodes`,
 * so that members listening on one port do not meet) or placed as Slurm
 * likes (`pack`); members that ask differently are a heterogeneous job, a
 * component each. GPUs are Slurm's to place (`--gres`): it sets each task's
 * CUDA_VISIBLE_DEVICES.
 */

export type Spread = "nodes" | "pack";

/** What one member asks of a node. */
export interface MemberShape {
  cpus: number;
  memoryMb: number;
  gpus: number;
}

export interface JobRequest {
  /** troupe-RUN-GROUP: squeue's name column. */
  name: string;
  /** troupe;run=..;owner=..;pid=..: no spaces (scontrol -o splits on them). */
  comment: string;
  partition?: string;
  account?: string;
  qos?: string;
  spread: Spread;
  /** Each member's shape, in the order of the members file (task i runs member i). */
  shapes: readonly MemberShape[];
  /** The run's directory on the shared file system: the job's working directory. */
  runDir: string;
  /** Where the batch script's own output goes. */
  scriptOutput: string;
  /**
   * The member helper's command (absolute paths the nodes see): troupe-slurm-helper, or the node's Node.js and
   * member-helper.mjs. Each task runs it with the members file after it.
   */
  helper: readonly string[];
  membersFile: string;
}

/** A member's request in Slurm's units: whole CPUs (at least one), MB of memory (0: the partition's default). */
export function shapeOf(resources: { cpu: number; gpu: number; memoryBytes: number } | undefined): MemberShape {
  return {
    cpus: Math.max(1, Math.ceil(resources?.cpu ?? 0)),
    memoryMb: Math.ceil((resources?.memoryBytes ?? 0) / 2 ** 20),
    gpus: Math.max(0, Math.ceil(resources?.gpu ?? 0)),
  };
}

const sameShape = (a: MemberShape, b: MemberShape) => a.cpus === b.cpus && a.memoryMb === b.memoryMb && a.gpus === b.gpus;

/** Whether the job is a heterogeneous one (a component per member). */
export function isHeterogeneous(shapes: readonly MemberShape[]): boolean {
  return shapes.some((shape) => !sameShape(shape, shapes[0]!));
}

/** Shell quoting for a word of the script. */
export function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Options every component carries: where it may run and who pays. */
function siteOptions(request: JobRequest): string[] {
  return [
    ...(request.partition ? [`--partition=${request.partition}`] : []),
    ...(request.account ? [`--account=${request.account}`] : []),
    ...(request.qos ? [`--qos=${request.qos}`] : []),
  ];
}

/** One member's own component of a heterogeneous job. */
function componentOptions(shape: MemberShape): string[] {
  return [
    "--nodes=1",
    "--ntasks=1",
    `--cpus-per-task=${shape.cpus}`,
    ...(shape.memoryMb > 0 ? [`--mem=${shape.memoryMb}M`] : []),
    ...(shape.gpus > 0 ? [`--gres=gpu:${shape.gpus}`] : []),
  ];
}

/** K members alike: on K nodes (memory and GPUs per node are then per member) or packed (per CPU, per task). */
function alikeOptions(shape: MemberShape, count: number, spread: Spread): string[] {
  const perMember =
    spread === "nodes"
      ? [
          `--nodes=${count}`,
          "--ntasks-per-node=1",
          ...(shape.memoryMb > 0 ? [`--mem=${shape.memoryMb}M`] : []),
          ...(shape.gpus > 0 ? [`--gres=gpu:${shape.gpus}`] : []),
        ]
      : [
          ...(shape.memoryMb > 0 ? [`--mem-per-cpu=${Math.ceil(shape.memoryMb / shape.cpus)}M`] : []),
          ...(shape.gpus > 0 ? [`--gpus-per-task=${shape.gpus}`] : []),
        ];
  return [`--ntasks=${count}`, `--cpus-per-task=${shape.cpus}`, ...perMember];
}

/**
 * How long a job Slurm signalled waits for Slurm to end it (its kill follows
 * after GraceTime or KillWait: seconds to minutes) before it ends by itself.
 */
export const SIGNALLED_LINGER_S = 900;
/**
 * What runs a group's script: POSIX sh, which every node has, and which starts in about two thirds of bash's
 * time (dash on Debian); the script starts with every group, on the login node or the job's first node.
 */
const SCRIPT_SHELL = "/bin/sh";
/** How long the batch script waits for its members' helpers to leave once their step has ended. */
const HELPERS_LEAVING_S = 5;

/** The job's options, component by component (one component for members alike), and the step's own. */
function jobShape(request: JobRequest, common: readonly string[]): { components: string[][]; step: string[] } {
  const { shapes } = request;
  if (isHeterogeneous(shapes))
    return { components: shapes.map((shape) => [...common, ...componentOptions(shape)]), step: [`--het-group=0-${shapes.length - 1}`] };
  const shape = shapes[0]!;
  return {
    components: [[...common, ...alikeOptions(shape, shapes.length, request.spread)]],
    step: [`--ntasks=${shapes.length}`, `--cpus-per-task=${shape.cpus}`, ...(request.spread === "nodes" ? ["--ntasks-per-node=1"] : [])],
  };
}

/**
 * Every component carries the name and comment (squeue shows them per component) and the site's options; a
 * batch job also where its script's output goes, and no requeue (troupe decides retries itself).
 */
function commonOptions(request: JobRequest, batch: boolean): string[] {
  return [
    `--job-name=${request.name}`,
    `--comment=${request.comment}`,
    ...(batch ? ["--no-requeue"] : []),
    `--chdir=${request.runDir}`,
    ...(batch ? [`--output=${request.scriptOutput}`] : []),
    ...siteOptions(request),
  ];
}

/** The step of the members' helpers, and the wait for them to leave once it has ended: the script's body. */
function stepLines(request: JobRequest, step: readonly string[]): string[] {
  return [
    "# One task per member, each the member helper (troupe-slurm-helper or member-helper.mjs); a task's end",
    "# is not its siblings' (--kill-on-bad-exit=0).",
    ["srun", ...step, "--kill-on-bad-exit=0", ...request.helper.map(quote), quote(request.membersFile), "&"].join(" "),
    "step=$!",
    "while :; do wait $step; status=$?; kill -0 $step 2>/dev/null || break; done",
    "# srun returns as soon as Slurm cancels the step: the helpers may still be ending (each leaves a `left`",
    "# file as it goes, or a `signalled` one when Slurm signalled it).",
    // Counted by the shell itself, not by a `seq` process: every group's job runs this, on a busy login node too.
    "tries=0",
    `while [ "$tries" -lt ${HELPERS_LEAVING_S * 10} ]; do`,
    "  tries=$((tries + 1))",
    "  all=1",
    // A literal tab: POSIX sh has no $'\t'.
    "  while IFS='\t' read -r key dir; do",
    '    [ -e "$dir/signalled" ] && signalled=1',
    '    [ -e "$dir/left" ] || [ -e "$dir/signalled" ] || all=',
    `  done < ${quote(request.membersFile)}`,
    '  [ -n "$all" ] && break',
    "  sleep 0.1",
    "done",
  ];
}

/**
 * The batch script of a group whose tasks outlive troupe: its #SBATCH lines (every option of the job) and the
 * one step of the members' helpers, started in the allocation, on the first node.
 */
export function batchScript(request: JobRequest): string {
  const { components, step } = jobShape(request, commonOptions(request, true));
  const lines = [`#!${SCRIPT_SHELL}`];
  components.forEach((options, i) => {
    if (i > 0) lines.push("#SBATCH hetjob");
    lines.push(...options.map((option) => `#SBATCH ${option}`));
  });
  lines.push(
    "trap 'signalled=1' TERM",
    ...stepLines(request, step),
    "# Signalled by Slurm, this script or a member's step (whose helper then leaves a `signalled` file):",
    "# preemption's grace, a time limit, scancel. How the job ended is Slurm's to say (PREEMPTED, TIMEOUT,",
    "# CANCELLED), so the job waits for Slurm's kill instead of ending by itself first.",
    `[ -n "$signalled" ] && sleep ${SIGNALLED_LINGER_S}`,
    "exit $status",
    "",
  );
  return lines.join("\n");
}

/**
 * A group whose tasks need not outlive troupe (`troupe run`'s): an interactive allocation, which Slurm
 * schedules as it is asked (srun's path), where a batch job waits for the scheduler's next pass (the backfill
 * interval: 30 s by default; or `batch_sched_delay`). `salloc OPTIONS [: OPTIONS ...] /bin/sh SCRIPT` runs
 * the script on this (the login) node once the allocation is granted, and the job ends with it. Nothing on the
 * nodes signals this script, but its members' helpers say when Slurm signalled them (preemption's grace, a time
 * limit, scancel): then, as the batch script does, it waits for Slurm to end the job, so that the job's state
 * says how it ended (a job salloc gives back first is COMPLETED). Slurm's end revokes the allocation, and salloc
 * ends the wait (`--kill-command`: SIGTERM to the script, by then the `sleep` it became).
 */
export function allocation(request: JobRequest, script: string): { argv: string[]; script: string } {
  const { components, step } = jobShape(request, commonOptions(request, false));
  const options = components.flatMap((component, i) => (i > 0 ? [":", ...component] : component));
  const argv = ["salloc", "--kill-command=TERM", ...options, SCRIPT_SHELL, script];
  const lines = [
    `#!${SCRIPT_SHELL}`,
    ...stepLines(request, step),
    `[ -n "$signalled" ] && exec sleep ${SIGNALLED_LINGER_S}`,
    "exit $status",
    "",
  ];
  return { argv, script: lines.join("\n") };
}
