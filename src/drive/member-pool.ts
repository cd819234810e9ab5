/**
 * A PoolBackend over this machine's member-level runtimes (runtime/types.ts),
 * a fresh one per run (a runtime holds one run's state). It stands in for
 * runtime/local-pool.ts's LocalPool, whose constructor it shares, until that
 * lands: its sessions carry their runtime to the engine of today, which still
 * speaks the member-level interface (`memberRuntimeOf`), and open no groups.
 * What the pool can do is asked of its first runtime (kept for the first
 * session: a one-run pool makes one runtime).
 */
import type { GroupHandle, PoolBackend, PoolCapabilities, RunContext, RunSession } from "../port/index.js";
import type { Runtime } from "../runtime/index.js";

export class MemberRuntimePool implements PoolBackend {
  readonly capabilities: PoolCapabilities;
  /**
   * The runtime describe, notices and sweep asked, given to the next session:
   * a `troupe run` makes one runtime only, as it describes, sweeps and runs.
   */
  private spare: Runtime | undefined;

  constructor(
    readonly kind: string,
    private readonly makeRuntime: () => Runtime,
  ) {
    this.spare = makeRuntime();
    // The engine places; members share this machine's disk and the runtime writes the logs there.
    this.capabilities = { placement: "engine", sharedFileSystem: true, tasksOutliveTroupe: this.spare.keepsTasks, localLogs: true };
  }

  private asked(): Runtime {
    return (this.spare ??= this.makeRuntime());
  }

  describe(): string {
    return this.asked().describe();
  }

  notices(): string[] {
    return this.asked().notices();
  }

  sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    return this.asked().sweep(spare);
  }

  async openSession(run: RunContext): Promise<RunSession> {
    const runtime = this.spare ?? this.makeRuntime();
    this.spare = undefined;
    try {
      await runtime.open(run);
    } catch (error) {
      // What it made before it failed (a bridge, a spawner) goes with it.
      await runtime.close().catch(() => undefined);
      throw error;
    }
    return new MemberRuntimeSession(runtime);
  }
}

class MemberRuntimeSession implements RunSession {
  readonly ensureImage?: (image: string) => Promise<void>;

  constructor(readonly runtime: Runtime) {
    if (runtime.ensureImage) this.ensureImage = (image) => runtime.ensureImage!(image);
  }

  openGroup(): GroupHandle {
    throw new Error(`groups are started through the member-level runtime until runtime/local-pool.ts lands`);
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}

/** The member-level runtime of a session opened by a MemberRuntimePool, for the engine of today. */
export function memberRuntimeOf(session: RunSession): Runtime {
  if (!(session instanceof MemberRuntimeSession)) throw new Error("the engine runs only sessions of this machine's runtimes for now");
  return session.runtime;
}
