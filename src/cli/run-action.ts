/** `troupe run`: what happens once the command line is read. */
import { availableParallelism, totalmem } from "node:os";
import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import { findUnschedulable, recordRunNotStarted, WorkflowRun, type Capacity } from "../engine/index.js";
import { UsageError } from "../errors/index.js";
import { checkEnvName, checkEnvValue, compileWorkflow, policyRefusals, type CompiledWorkflow } from "../plan/index.js";
import { baseDirOf, inlineLocalFiles, parseSize } from "../spec/index.js";
import { log } from "../util/log.js";
import { completedGroups } from "../store/index.js";
import { processToken } from "../util/process-identity.js";
import { poolGpus } from "./gpus.js";
import { formatBytes, formatDiagnostic, summarizeDiagnostics } from "./format.js";
import { openStore } from "./home.js";
import { watchCancelRequests } from "./cancel-watch.js";
import { loadSpecFile, type LoadedSpec } from "./load-spec.js";
import { isClosed, onClosed } from "./output.js";
import { RunView, summaryLines } from "./run-view.js";
import { colorsFor, RUN_EXIT, writeJson, type SpecOptions } from "./shared.js";
import { askEngine, chooseRuntime, type RuntimeChoice } from "./choose-runtime.js";
import { LocalPool, type TaskLaunch } from "../runtime/index.js";

export interface RunOptions extends SpecOptions, RuntimeChoice {
  cpus?: number;
  memory?: string;
  gpus?: number;
  /** Take --gpus as given, even above the GPUs nvidia-smi lists. */
  gpusUnchecked?: boolean;
  maxParallel?: number;
  allowPrivileged?: boolean;
  /** `--set-env`: set in every task's environment. */
  setEnv?: Record<string, string>;
  /** `--log-file`: troupe's own log of the run (taken up by main.ts before the command's action). */
  logFile?: string;
}

export { RUN_EXIT } from "./shared.js";

/** `--set-env` names and values, checked before anything starts (usage errors, exit 2). */
export function checkSetEnv(env: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(env ?? {})) {
    const named = checkEnvName(name);
    const checked = named.ok ? checkEnvValue(name, value) : named;
    if (!checked.ok) throw new UsageError(`--set-env: ${checked.reason}`, "for example --set-env LOG_LEVEL=debug");
  }
}

/** A restart (`troupe restart`): the spec a run was recorded with, run again, taking over its completed groups. */
export interface RestartSource {
  /** The run restarted. */
  of: string;
  loaded: LoadedSpec;
  /** Where its `localpath` files are found. */
  baseDir: string;
}

/** Runs a workflow file (or, `restart`, a recorded run's spec again) to its end; returns the exit code. */
export async function runWorkflow(
  file: string,
  options: RunOptions,
  engine = askEngine(options),
  restart?: RestartSource,
): Promise<number> {
  limitHeapGrowth();
  const json = options.output === "json";
  const progress = json ? process.stderr : process.stdout;
  const c = colorsFor(progress);
  // The engine connection of a run that never started: closing it can only fail by being closed already.
  const dropEngine = (): void => void engine?.then(({ backend }) => backend.close()).catch(() => undefined);
  const checked = await planRun(file, options, restart);
  if (typeof checked === "number") {
    dropEngine();
    return checked;
  }
  const { plan, specText, baseDir, capacity } = checked;

  const images = new Set(plan.groups.flatMap((g) => g.tasks.map((t) => t.image)));
  // The store opens while the engine answers.
  const { store, settled } = openStore();
  let chosen;
  try {
    chosen = await chooseRuntime(options, images, engine);
  } catch (error) {
    store.close();
    throw error;
  }
  const { runtime, note: runtimeNote } = chosen;
  // A restart takes over what completed in the run it restarts (and in the runs that one took over from).
  const reused = restart ? completedGroups(store, restart.of, plan) : undefined;
  const runId = store.createRun({
    owner: processToken(),
    name: plan.name,
    specText,
    // What a restart renders the spec with again.
    variables: { set: options.set, setString: options.setString, env: options.setEnv },
    baseDir,
    runtime: runtime.describe(),
    submitTime: Date.now(),
    groups: plan.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => ({ name: t.name, lead: t.lead })) })),
  });
  const runLog = log.child({ run: runId });
  runLog.info({ workflow: plan.name, runtime: runtime.describe(), restartOf: restart?.of }, "run started");
  const view = new RunView(
    progress,
    c,
    !json && progress.isTTY === true,
    plan.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => t.name) })),
  );
  view.line(`troupe: run ${runId}: ${restart ? `restart of ${restart.of}, ` : ""}${runtime.describe()}`);
  if (restart)
    view.line(
      c.dim(
        `troupe: ${reused!.size} of ${plan.groups.length} groups completed in ${restart.of} and are reused: ${[...reused!.keys()].map((g) => plan.groups[g]!.name).join(", ") || "none"}`,
      ),
    );
  if (runtimeNote) view.line(c.dim(`troupe: note: ${runtimeNote}`));
  for (const notice of runtime.notices()) view.line(c.dim(`troupe: note: ${notice}`));

  if (settled.length) view.line(c.dim(`troupe: runs whose troupe process had died are now FAILED_SERVER_ERROR: ${settled.join(", ")}`));
  // What runs whose troupe died left behind is removed alongside this run (it never touches a live owner's).
  const sweeping = runtime.sweep().then(
    (swept) => swept.length > 0 && view.line(c.dim(`troupe: removed what an earlier run left behind: ${swept.join("; ")}`)),
    (error: Error) => {
      runLog.warn({ err: error }, "could not remove what earlier runs left behind");
      view.line(c.yellow(`troupe: warning: could not remove what earlier runs left behind: ${error.message}`));
    },
  );
  // Nobody reads the output any more (`troupe run X | head`): the run goes on, its tasks' output still in their logs.
  onClosed(progress, () => {
    if (!isClosed(process.stderr) && progress !== process.stderr)
      process.stderr.write(`troupe: the output was closed; run ${runId} goes on (\`troupe logs ${runId}\` has its tasks' output)\n`);
  });
  let run: WorkflowRun | undefined;
  let signals = 0;
  let cancelReason: string | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // A closed terminal: nobody is left to see the run or to stop it. It may say so twice (the kernel to the
    // foreground job, the shell to its jobs): that is one cancel, not a request to force one.
    if (signal === "SIGHUP") {
      if (cancelReason) return;
      cancelReason = "canceled: the terminal was closed (SIGHUP)";
    }
    signals++;
    view.line(c.yellow(signals === 1 ? `troupe: ${signal}: canceling the run (again to force)` : `troupe: ${signal}: forcing`));
    run?.cancel(signals > 1, cancelReason);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  // `troupe cancel RUN` in another terminal.
  const stopWatching = watchCancelRequests(store, runId, (request) => {
    cancelReason = request.reason;
    signals = Math.max(signals, request.force ? 2 : 1);
    view.line(c.yellow(`troupe: ${request.reason}${request.force ? " (forced)" : ""}; stopping the run`));
    run?.cancel(request.force, request.reason);
  });
  try {
    let session;
    try {
      const onOutput = (launch: TaskLaunch, chunk: Buffer) => view.output(launch.taskName, chunk);
      session = await new LocalPool("local", () => runtime).openSession({ runId, dataDir: store.runDir(runId), onOutput });
    } catch (error) {
      // Nothing ran: the run is recorded as failed by its backend, with the reason.
      const reason = (error as Error).message;
      runLog.error({ err: error }, "the runtime could not open the run");
      recordRunNotStarted(store, runId, reason);
      process.stderr.write(`${colorsFor(process.stderr).red("error")} E_RUNTIME: run ${runId} could not start: ${reason}\n`);
      return RUN_EXIT.failed;
    }
    run = new WorkflowRun({
      runId,
      plan,
      session,
      recorder: store,
      dataDir: store.runDir(runId),
      capacity,
      maxParallel: options.maxParallel ?? 64,
      maxRetries: options.maxRetries,
      reused,
      onEvent: (e) => view.event(e),
    });
    const done = run.start();
    // A Ctrl-C that came while the runtime was opening cancels the run now that it exists.
    if (signals > 0) run.cancel(signals > 1, cancelReason);
    const result = await done;
    runLog.info({ status: result.status }, "run ended");
    // Its state is no longer needed: not kept while the record is read and printed.
    run = undefined;
    view.finish();
    const record = store.getRun(runId);
    if (!record) throw new Error(`run ${runId} vanished from the store`);
    if (json) writeJson(record);
    else writeLines(["", ...summaryLines(record, c)]);
    return result.status === "COMPLETED" ? RUN_EXIT.completed : result.status === "FAILED_CANCELED" ? RUN_EXIT.canceled : RUN_EXIT.failed;
  } finally {
    stopWatching();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    // The clean-up is finished whatever the terminal does meanwhile (a closed one may send SIGHUP again); what is
    // left after it is the process's exit, which a late SIGHUP need not hurry either.
    process.on("SIGHUP", () => undefined);
    await sweeping;
    await runtime.close().catch((error: Error) => {
      // What is left (a bridge, NAT rules) is swept by the next run; say so rather than hide it.
      runLog.warn({ err: error }, "cleaning up the run failed");
      process.stderr.write(`troupe: warning: cleaning up the run failed: ${error.message} (the next run sweeps what is left)\n`);
    });
    store.close();
  }
}

/**
 * A run keeps its plan and state (about 1.5 KB a task) for hours while it makes short-lived garbage at
 * every transition; V8's default lets the heap grow to up to 4x what is live between full collections
 * (a 100,000-task run peaked near 1 GB for about 200 MB live). 1.5x instead: a full collection every
 * few thousand tasks, about 0.2 s each on such a heap.
 */
function limitHeapGrowth(): void {
  setFlagsFromString("--heap-growing-percent=50");
}

/** Lines to standard output, a few thousand to a write (not one string of them all). */
function writeLines(lines: Iterable<string>): void {
  let chunk: string[] = [];
  for (const line of lines) {
    chunk.push(line);
    if (chunk.length === 4096) {
      process.stdout.write(chunk.join("\n") + "\n");
      chunk = [];
    }
  }
  if (chunk.length > 0) process.stdout.write(chunk.join("\n") + "\n");
}

/**
 * The workflow read, checked and compiled, or the exit code it was refused with. Apart from the
 * run's own function on purpose: the loaded spec (100,000 tasks: tens of MB) is not kept while the run goes on.
 */
async function planRun(
  file: string,
  options: RunOptions,
  restart: RestartSource | undefined,
): Promise<{ plan: CompiledWorkflow; specText: string; baseDir: string; capacity: Capacity } | number> {
  const loaded = restart?.loaded ?? (await loadSpecFile(file, options));
  for (const d of loaded.diagnostics) process.stderr.write(formatDiagnostic(loaded.displayName, d, colorsFor(process.stderr)) + "\n");
  if (!loaded.spec) {
    process.stderr.write(`${loaded.displayName}: invalid (${summarizeDiagnostics(loaded.diagnostics, loaded.omitted)})\n`);
    return RUN_EXIT.invalid;
  }
  const baseDir = restart?.baseDir ?? (file === "-" ? process.cwd() : baseDirOf(resolve(file)));
  const plan = compileWorkflow(inlineLocalFiles(loaded.spec, baseDir), { env: options.setEnv });
  const refusals = policyRefusals(plan, { privilegedAllowed: options.allowPrivileged === true }, "of troupe run");
  if (refusals.length > 0) {
    for (const refusal of refusals) process.stderr.write(`${loaded.displayName}: error E_NOT_ALLOWED: ${refusal}\n`);
    return RUN_EXIT.invalid;
  }
  const capacity = poolCapacity(options);
  const unschedulable = findUnschedulable(plan, capacity);
  if (unschedulable.length > 0) {
    for (const u of unschedulable) {
      process.stderr.write(
        `${loaded.displayName}: error E_UNSCHEDULABLE: group ${u.group} needs cpu ${u.demand.cpu}, gpu ${u.demand.gpu}, memory ${formatBytes(u.demand.memoryBytes)} at once; ` +
          `the pool has cpu ${u.capacity.cpu}, gpu ${u.capacity.gpu}, memory ${formatBytes(u.capacity.memoryBytes)} (use --cpus/--gpus/--memory, or ask for less)\n`,
      );
    }
    return RUN_EXIT.invalid;
  }
  return { plan, specText: loaded.text, baseDir, capacity };
}

function poolCapacity(options: RunOptions): Capacity {
  let memoryBytes = totalmem();
  if (options.memory !== undefined) {
    const parsed = parseSize(options.memory);
    if (!parsed.ok) throw new UsageError(`--memory ${parsed.reason}`);
    memoryBytes = parsed.value;
  }
  const gpu = poolGpus(options.gpus, options.gpusUnchecked === true, "--gpus", "--gpus-unchecked");
  return { cpu: options.cpus ?? availableParallelism(), gpu, memoryBytes };
}
