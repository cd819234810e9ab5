/** `troupe run`: what happens once the command line is read. */
import { availableParallelism, totalmem } from "node:os";
import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import {
  credentialRegistryAuth,
  driveRun,
  homeDataPlane,
  homeTaskCredentials,
  recordRun,
  type DrivenRun,
  type RuntimeChoice,
} from "../drive/index.js";
import { findUnschedulable, maxParallelFor, type Capacity } from "../engine/index.js";
import { TroupeError, UsageError } from "../errors/index.js";
import { parseStorageUrl } from "../model/index.js";
import type { PoolBackend } from "../port/index.js";
import {
  checkEnvName,
  checkEnvValue,
  compileWorkflow,
  dataStoreRefusal,
  hostNetworkRefusal,
  platformRefusal,
  taskDataRefusal,
  policyRefusals,
  type CompiledWorkflow,
} from "../plan/index.js";
import { baseDirOf, inlineLocalFiles, parseSize } from "../spec/index.js";
import { completedGroups, foreignOutputs, type RunStore } from "../store/index.js";
import { poolGpus } from "./gpus.js";
import { formatBytes, formatDiagnostic, summarizeDiagnostics } from "./format.js";
import { openStore } from "./home.js";
import { watchCancelRequests } from "./cancel-watch.js";
import { loadSpecFile, type LoadedSpec } from "./load-spec.js";
import { isClosed, onClosed } from "./output.js";
import { RunView, summaryLines } from "./run-view.js";
import { colorsFor, RUN_EXIT, writeJson, type SpecOptions } from "./shared.js";
import { askRuntime, type RuntimeFlags } from "./choose-runtime.js";
import { placeGroups, placementErrors } from "./group-placement.js";

export interface RunOptions extends SpecOptions, RuntimeFlags {
  cpus?: number;
  memory?: string;
  gpus?: number;
  /** Take --gpus as given, even above the GPUs nvidia-smi lists. */
  gpusUnchecked?: boolean;
  maxParallel?: number;
  /** `--start-timeout`, in ms: how long a task's sandbox may take to come up (RunOptions.startTimeoutMs in the engine). */
  startTimeout?: number;
  allowPrivileged?: boolean;
  /** `--allow-host-network`: tasks with `hostNetwork: true` may run on the machine's own network. */
  allowHostNetwork?: boolean;
  /** Host paths tasks' `volumeMounts` may show them (--allow-mount). */
  allowMount?: string[];
  /** `--set-env`: set in every task's environment. */
  setEnv?: Record<string, string>;
  /** `--data-store`: intermediate storage, `s3://BUCKET/PREFIX` (RunOptions.dataStore). */
  dataStore?: string;
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
  choice: RuntimeChoice = askRuntime(options),
  restart?: RestartSource,
): Promise<number> {
  limitHeapGrowth();
  const json = options.output === "json";
  const progress = json ? process.stderr : process.stdout;
  const c = colorsFor(progress);
  const checked = await planRun(file, options, restart);
  if (typeof checked === "number") {
    choice.drop();
    return checked;
  }
  const { plan, specText, baseDir, displayName } = checked;

  const images = new Set(plan.groups.flatMap((g) => g.tasks.map((t) => t.image)));
  // The store opens while the runtime's check answers (a cluster's nodes, an engine's version).
  const { store, settled } = openStore();
  let capacity;
  try {
    capacity = await poolFit(plan, displayName, options, choice);
  } catch (error) {
    store.close();
    throw error;
  }
  if (typeof capacity === "number") {
    store.close();
    choice.drop();
    return capacity;
  }
  let chosen;
  let credentials;
  try {
    // A credential or key that does not exist is refused before the run is recorded.
    credentials = homeTaskCredentials(store, plan);
  } catch (error) {
    store.close();
    choice.drop();
    throw error;
  }
  // So is an input from another workflow whose output this home does not have (every run here is the user's).
  const foreign = foreignOutputs(store, plan, () => true);
  if (foreign.problems.length > 0) {
    store.close();
    choice.drop();
    throw new TroupeError(
      "E_INPUT_UNAVAILABLE",
      foreign.problems.join("\n"),
      "usage",
      "`troupe workflow list` shows this home's runs; a task's output is there once it completed",
    );
  }
  try {
    chosen = await choice.settle({ images, longLived: false });
  } catch (error) {
    store.close();
    throw error;
  }
  const { backend, note: runtimeNote } = chosen;
  const refused = runtimeRefusal(plan, backend, options.dataStore);
  if (refused) {
    store.close();
    throw refused;
  }
  // A restart takes over what completed in the run it restarts (and in the runs that one took over from).
  const reused = restart ? completedGroups(store, restart.of, plan) : undefined;
  // What a restart renders the spec with again.
  const variables = { set: options.set, setString: options.setString, env: options.setEnv };
  const { id: runId } = recordRun(store, plan, backend, { specText, variables, baseDir });
  const view = new RunView(
    progress,
    c,
    !json && progress.isTTY === true,
    plan.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => t.name) })),
  );
  view.line(`troupe: run ${runId}: ${restart ? `restart of ${restart.of}, ` : ""}${backend.describe()}`);
  if (restart)
    view.line(
      c.dim(
        `troupe: ${reused!.size} of ${plan.groups.length} groups completed in ${restart.of} and are reused: ${[...reused!.keys()].map((g) => plan.groups[g]!.name).join(", ") || "none"}`,
      ),
    );
  if (runtimeNote) view.line(c.dim(`troupe: note: ${runtimeNote}`));
  for (const notice of backend.notices()) view.line(c.dim(`troupe: note: ${notice}`));

  if (settled.length) view.line(c.dim(`troupe: runs whose troupe process had died are now FAILED_SERVER_ERROR: ${settled.join(", ")}`));
  const driven = driveRun({
    runId,
    plan,
    store,
    backend,
    driver: "troupe run",
    engine: {
      capacity,
      maxParallel: maxParallelFor(backend.capabilities, options.maxParallel),
      maxRetries: options.maxRetries,
      startTimeoutMs: options.startTimeout,
      reused,
      foreignOutputs: foreign.outputs,
      foreignStored: foreign.stored,
      dataStore: options.dataStore,
      onEvent: (e) => view.event(e),
      data: homeDataPlane(store),
      credentials,
    },
    onOutput: (launch, chunk) => view.output(launch.taskName, chunk),
    registryAuth: credentialRegistryAuth(store.credentials),
    // What runs whose troupe died left behind is removed alongside this run (it never touches a live owner's).
    onSweep: (result) =>
      "error" in result
        ? view.line(c.yellow(`troupe: warning: could not remove what earlier runs left behind: ${result.error.message}`))
        : result.swept.length > 0 && view.line(c.dim(`troupe: removed what an earlier run left behind: ${result.swept.join("; ")}`)),
  });
  // Nobody reads the output any more (`troupe run X | head`): the run goes on, its tasks' output still in their logs.
  onClosed(progress, () => {
    if (!isClosed(process.stderr) && progress !== process.stderr)
      process.stderr.write(`troupe: the output was closed; run ${runId} goes on (\`troupe logs ${runId}\` has its tasks' output)\n`);
  });
  const stopListening = listenForCancels(store, runId, driven, (line) => view.line(c.yellow(line)));
  try {
    const outcome = await driven.ended;
    if (outcome.kind === "not-started") {
      // Nothing ran: the run is recorded as failed by its backend, with the reason.
      process.stderr.write(`${colorsFor(process.stderr).red("error")} E_RUNTIME: run ${runId} could not start: ${outcome.error.message}\n`);
      return RUN_EXIT.failed;
    }
    if (outcome.kind === "failed") throw outcome.error;
    view.finish();
    const record = store.getRun(runId);
    if (!record) throw new Error(`run ${runId} vanished from the store`);
    if (json) writeJson(record);
    else writeLines(["", ...summaryLines(record, c)]);
    return outcome.status === "COMPLETED" ? RUN_EXIT.completed : outcome.status === "FAILED_CANCELED" ? RUN_EXIT.canceled : RUN_EXIT.failed;
  } finally {
    stopListening();
    const { closeError } = await driven.done;
    // What is left (a bridge, NAT rules) is swept by the next run; say so rather than hide it.
    if (closeError)
      process.stderr.write(`troupe: warning: cleaning up the run failed: ${closeError.message} (the next run sweeps what is left)\n`);
    store.close();
  }
}

/**
 * Signals (Ctrl-C: cancel, again: force; a closed terminal) and `troupe cancel RUN` in another terminal
 * cancel the run; returns the function that stops listening.
 */
function listenForCancels(store: RunStore, runId: string, driven: DrivenRun, say: (line: string) => void): () => void {
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
    say(signals === 1 ? `troupe: ${signal}: canceling the run (again to force)` : `troupe: ${signal}: forcing`);
    driven.cancel(signals > 1, cancelReason);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  const stopWatching = watchCancelRequests(store, runId, (request) => {
    cancelReason = request.reason;
    signals = Math.max(signals, request.force ? 2 : 1);
    say(`troupe: ${request.reason}${request.force ? " (forced)" : ""}; stopping the run`);
    driven.cancel(request.force, request.reason);
  });
  return () => {
    stopWatching();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    // The clean-up is finished whatever the terminal does meanwhile (a closed one may send SIGHUP again); what is
    // left after it is the process's exit, which a late SIGHUP need not hurry either.
    process.on("SIGHUP", () => undefined);
  };
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
): Promise<{ plan: CompiledWorkflow; specText: string; baseDir: string; displayName: string } | number> {
  const loaded = restart?.loaded ?? (await loadSpecFile(file, options));
  for (const d of loaded.diagnostics) process.stderr.write(formatDiagnostic(loaded.displayName, d, colorsFor(process.stderr)) + "\n");
  if (!loaded.spec) {
    process.stderr.write(`${loaded.displayName}: invalid (${summarizeDiagnostics(loaded.diagnostics, loaded.omitted)})\n`);
    return RUN_EXIT.invalid;
  }
  const baseDir = restart?.baseDir ?? (file === "-" ? process.cwd() : baseDirOf(resolve(file)));
  const plan = compileWorkflow(inlineLocalFiles(loaded.spec, baseDir), { env: options.setEnv });
  const dataStore = options.dataStore === undefined ? undefined : parseStorageUrl(options.dataStore);
  if (dataStore && !dataStore.ok)
    throw new TroupeError("E_DATA_URL", `--data-store: ${dataStore.reason}`, "usage", "for example --data-store s3://lab-data/troupe");
  const allowedMounts = options.allowMount ?? [];
  const relative = allowedMounts.find((path) => !path.startsWith("/"));
  if (relative !== undefined) throw new UsageError(`--allow-mount ${relative}: not an absolute path`);
  const policy = {
    privilegedAllowed: options.allowPrivileged === true,
    hostNetworkAllowed: options.allowHostNetwork === true,
    allowedMounts,
  };
  const refusals = policyRefusals(plan, policy, "of troupe run");
  if (refusals.length > 0) {
    for (const refusal of refusals) process.stderr.write(`${loaded.displayName}: error E_NOT_ALLOWED: ${refusal}\n`);
    return RUN_EXIT.invalid;
  }
  return { plan, specText: loaded.text, baseDir, displayName: loaded.displayName };
}

/** The pool's capacity for the run, once the runtime's check knows it, or the exit code of a group that can never fit. */
async function poolFit(
  plan: CompiledWorkflow,
  displayName: string,
  options: RunOptions,
  choice: RuntimeChoice,
): Promise<Capacity | number> {
  const capacity = poolCapacity(options, await choice.knownCapacity());
  const unschedulable = findUnschedulable(plan, capacity);
  if (unschedulable.length > 0) {
    for (const u of unschedulable) {
      process.stderr.write(
        `${displayName}: error E_UNSCHEDULABLE: group ${u.group} needs cpu ${u.demand.cpu}, gpu ${u.demand.gpu}, memory ${formatBytes(u.demand.memoryBytes)} at once; ` +
          `the pool has cpu ${u.capacity.cpu}, gpu ${u.capacity.gpu}, memory ${formatBytes(u.capacity.memoryBytes)} (use --cpus/--gpus/--memory, or ask for less)\n`,
      );
    }
    return RUN_EXIT.invalid;
  }
  const placer = await choice.knownPlacement();
  const unplaceable = placer ? placementErrors(displayName, placeGroups(plan, placer)) : [];
  if (unplaceable.length > 0) {
    for (const line of unplaceable) process.stderr.write(`${line}\n`);
    return RUN_EXIT.invalid;
  }
  return capacity;
}

/**
 * What the chosen runtime cannot give the workflow, before anything is recorded: tasks that share no disk with
 * troupe pass data only through a store; `hostNetwork: true` only where the runtime can put a task on the machine's network.
 */
function runtimeRefusal(plan: CompiledWorkflow, backend: PoolBackend, dataStore: string | undefined): TroupeError | undefined {
  const where = `the ${backend.kind} runtime`;
  const noData = taskDataRefusal(plan, backend.capabilities.taskData !== false, where);
  if (noData !== undefined) return new TroupeError("E_NOT_SUPPORTED", noData, "usage");
  const unshared = dataStoreRefusal(plan, { ...backend.capabilities, dataStore }, where, "--data-store s3://BUCKET/PREFIX");
  if (unshared !== undefined) return new TroupeError("E_DATA_STORE_REQUIRED", unshared, "usage");
  const noHostNetwork = hostNetworkRefusal(plan, backend.capabilities.hostNetwork === true, where);
  if (noHostNetwork !== undefined) return new TroupeError("E_NOT_ALLOWED", noHostNetwork, "usage");
  const noPlatform = platformRefusal(plan, backend.capabilities.platforms, where);
  return noPlatform === undefined ? undefined : new TroupeError("E_PLATFORM", noPlatform, "usage");
}

/** This machine's capacity, or the one the runtime knows (a cluster's), as --cpus/--memory/--gpus change it. */
function poolCapacity(options: RunOptions, known: Capacity | undefined): Capacity {
  let memoryBytes = known?.memoryBytes ?? totalmem();
  if (options.memory !== undefined) {
    const parsed = parseSize(options.memory);
    if (!parsed.ok) throw new UsageError(`--memory ${parsed.reason}`);
    memoryBytes = parsed.value;
  }
  // A cluster's GPUs are its nodes', which nvidia-smi here does not see.
  const gpu =
    known && options.gpus === undefined
      ? known.gpu
      : poolGpus(options.gpus, options.gpusUnchecked === true || known !== undefined, "--gpus", "--gpus-unchecked");
  return { cpu: options.cpus ?? known?.cpu ?? availableParallelism(), gpu, memoryBytes };
}
