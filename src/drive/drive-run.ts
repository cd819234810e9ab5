/**
 * What every run goes through, whoever drives it (`troupe run`, the server):
 * recorded, its session opened on the pool's backend, the engine's run made
 * and started, waited for, the session closed, the end recorded however it
 * came. The callers keep what is theirs: the live view, signals; the
 * server's queueing, ownership and resume bookkeeping.
 */
import { mkdir } from "node:fs/promises";
import { recordRunNotStarted, recordRunSettled, WorkflowRun, type RunOptions, type RunResult } from "../engine/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import type { OutputSink, PoolBackend, RegistryAuthority, RunSession } from "../port/index.js";
import { killKeptTasks } from "../runtime/index.js";
import { recordDataStore, type NewRun, type RunStore } from "../store/index.js";
import { log } from "../util/log.js";
import { keptOwnerToken, processToken } from "../util/process-identity.js";

/** What a new run is recorded with besides its plan and runtime. */
export type RunDetails = Omit<NewRun, "name" | "runtime" | "submitTime" | "groups" | "owner"> & {
  /** Its tasks are to outlive this process (a server's): it is owned by whoever resumes it. */
  keepTasks?: boolean;
};

/** Records a new run of `plan` on `backend`, PENDING; its id and what was recorded. */
export function recordRun(
  store: RunStore,
  plan: CompiledWorkflow,
  backend: PoolBackend,
  details: RunDetails,
  makeDirs = true,
): { id: string; created: NewRun } {
  const { keepTasks, ...rest } = details;
  const created: NewRun = {
    ...rest,
    // Kept tasks outlive this process; the next one (a server's restart) resumes the run.
    owner: keepTasks && backend.capabilities.tasksOutliveTroupe ? keptOwnerToken() : processToken(),
    name: plan.name,
    runtime: backend.describe(),
    submitTime: Date.now(),
    groups: plan.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => ({ name: t.name, lead: t.lead })) })),
  };
  return { id: store.createRun(created, makeDirs), created };
}

/** How the engine's run is set, but for what driveRun gives it. */
export type EngineSettings = Omit<RunOptions, "runId" | "plan" | "session" | "capabilities" | "recorder" | "dataDir">;

export interface DriveOptions {
  runId: string;
  plan: CompiledWorkflow;
  store: RunStore;
  backend: PoolBackend;
  engine: EngineSettings;
  /** Who drives it, for the reason of a run that fails under it: "server", "troupe run". */
  driver: string;
  /** What the log's "run started" line says of it besides its workflow and runtime (the server: user, pool). */
  logFields?: Record<string, unknown>;
  /** Live output of the tasks (`troupe run`'s view); their logs get it regardless. */
  onOutput?: OutputSink;
  /** Its tasks outlive this process where the pool can (a server's, whose next start resumes the run). */
  keepTasks?: boolean;
  /** The registry login each image's pull uses (the REGISTRY credentials of whoever runs it). */
  registryAuth?: RegistryAuthority;
  /**
   * Also remove what runs whose troupe died left behind, alongside this run
   * (never a live owner's): told what went, or why not, before the clean-up.
   */
  onSweep?(result: { swept: string[] } | { error: Error }): void;
}

export type DriveOutcome =
  | { kind: "ended"; status: RunResult["status"] }
  /** The session could not be opened: nothing ran, the run is FAILED_BACKEND_ERROR. */
  | { kind: "not-started"; error: Error }
  /** It failed under its driver: it and its unfinished parts are FAILED_SERVER_ERROR. */
  | { kind: "failed"; error: Error };

/** A run being driven: cancel it at any time, even before its engine's run exists. */
export class DrivenRun {
  private run: WorkflowRun | undefined;
  private pending: { force: boolean; reason?: string } | undefined;
  private resolveEnded!: (outcome: DriveOutcome) => void;
  /** Its end, as soon as the engine's run has ended (before the clean-up). */
  readonly ended = new Promise<DriveOutcome>((resolve) => (this.resolveEnded = resolve));
  /** Once its session is closed and everything is recorded; `closeError` when the clean-up failed. */
  readonly done: Promise<{ outcome: DriveOutcome; closeError?: Error }>;

  constructor(private readonly options: DriveOptions) {
    this.done = this.drive();
  }

  cancel(force = false, reason?: string): void {
    if (this.run) this.run.cancel(force, reason);
    else this.pending = { force: force || this.pending?.force === true, reason: reason ?? this.pending?.reason };
  }

  private async drive(): Promise<{ outcome: DriveOutcome; closeError?: Error }> {
    const { runId, store, backend, onSweep } = this.options;
    // Swept once this run's first groups are on their way (or it could not start): the sweep's listing (squeue,
    // podman's) and its process must not hold up their start. What it removes is never a live owner's.
    let sweeping: Promise<void> | undefined;
    const sweep = () =>
      (sweeping ??=
        onSweep &&
        backend.sweep().then(
          (swept) => onSweep({ swept }),
          (error: Error) => onSweep({ error }),
        ));
    const runLog = log.child({ run: runId, driver: this.options.driver });
    const { plan, engine } = this.options;
    runLog.info(
      { workflow: plan.name, runtime: backend.describe(), resumed: engine.resume !== undefined, ...this.options.logFields },
      "run started",
    );
    let session: RunSession | undefined;
    let outcome: DriveOutcome;
    try {
      await mkdir(store.runLogDir(runId), { recursive: true });
      // Where its outputs are kept, for later runs that take them as inputs (store/foreign-outputs.ts).
      if (engine.dataStore !== undefined) recordDataStore(store.runDir(runId), engine.dataStore);
      try {
        session = await backend.openSession({
          runId,
          dataDir: store.runDir(runId),
          onOutput: this.options.onOutput,
          keepTasks: this.options.keepTasks,
          resumed: this.options.engine.resume !== undefined,
          registryAuth: this.options.registryAuth,
        });
      } catch (error) {
        outcome = { kind: "not-started", error: error as Error };
      }
      if (session) {
        const running = this.startEngineRun(session);
        sweep();
        outcome = { kind: "ended", status: (await running).status };
      }
    } catch (error) {
      outcome = { kind: "failed", error: error as Error };
    }
    sweep();
    this.run = undefined; // its state is no longer needed: not kept while the record is read and printed
    if (outcome!.kind === "ended") runLog.info({ status: outcome!.status }, "run ended");
    else runLog.error({ err: outcome!.error }, outcome!.kind === "not-started" ? "the run could not start" : "the run failed");
    this.recordEnd(outcome!);
    this.resolveEnded(outcome!);
    await sweeping;
    const closeError = await session?.close().then(
      () => undefined,
      (error: Error) => error,
    );
    // What is left (a bridge, a network) is swept by the next run's start.
    if (closeError) runLog.warn({ err: closeError }, "cleaning up the run failed");
    store.flush();
    return { outcome: outcome!, closeError };
  }

  /** The engine's run on `session`, started (and canceled, when a cancel came first): the one place that makes it. */
  private startEngineRun(session: RunSession): Promise<RunResult> {
    const { runId, plan, store, engine, backend } = this.options;
    this.run = new WorkflowRun({
      ...engine,
      runId,
      plan,
      session,
      capabilities: backend.capabilities,
      recorder: store,
      dataDir: store.runDir(runId),
    });
    const done = this.run.start();
    if (this.pending) this.run.cancel(this.pending.force, this.pending.reason);
    return done;
  }

  /** The end of a run that did not end by itself, in the record. */
  private recordEnd(outcome: DriveOutcome): void {
    if (outcome.kind === "ended") return;
    const { runId, store, engine, driver } = this.options;
    const message = outcome.error.message;
    const record = store.getRun(runId);
    if (record?.status === "PENDING" && !engine.resume) recordRunNotStarted(store, runId, `the run could not start: ${message}`);
    else if (record?.status === "PENDING" || record?.status === "RUNNING") {
      // Started (by an earlier process, say): a run marked alone would leave its groups RUNNING in the record and
      // its kept tasks running unwatched. They end, and every unfinished part is settled with the reason.
      killKeptTasks(store.runDir(runId));
      const why = engine.resume ? `the ${driver} restarted and could not resume the run` : `the run failed in the ${driver}`;
      recordRunSettled(store, record, `${why}: ${message}`);
    }
  }
}

/** Drives run `runId` (recorded by recordRun, or resumed) to its end. */
export function driveRun(options: DriveOptions): DrivenRun {
  return new DrivenRun(options);
}
