/** What the conformance suite is told of the runtime it runs against, and small waits its cases share. */
import type { GroupHandle, PoolBackend, RunContext, RunSession } from "../../src/port/index.js";
import type { TestContext } from "vitest";
import type { BackendName } from "./backends.js";
import type { GroupProbe } from "./group-probe.js";

export interface ConformanceTarget {
  /** As the suite's title says it. */
  name: string;
  /** The pool, made once for the test file. */
  make(): Promise<PoolBackend>;
  /** After the file's cases (close an engine's connection, stop a service). */
  dispose?(): Promise<void> | void;
  /** The name in backends.ts of the same pool: a child process makes it to play a troupe that is killed mid-run. */
  backend: BackendName;
  /** TaskLaunch.image: an image the pool has (the host runtime stands in for any). */
  image: string;
  /**
   * How the pool reports a command that cannot be found. The port says
   * `start-failed`; this machine's runtimes see only the exit code 127 a
   * shell gives (the sandbox or troupe-init could not exec it), which the
   * suite then asserts instead, so that the difference stays in view.
   */
  missingBinary?: "start-failed" | "exit-127";
  /**
   * What the pool cannot do yet that no capability says, with why: the cases
   * that need it are skipped, printing the reason.
   * files: place a member's `files:` at their paths and mount its inputs read-only (a sandbox's work).
   * commands: run a member's command at all (a simulated cluster: kwok's pods end as the test cluster's
   * annotations say, whatever their command; no output, no signals, no network between members).
   */
  cannot?: { files?: string; commands?: string };
  /**
   * The pool runs images but checks each only where a member is prepared (a
   * cluster's nodes pull their own): one it cannot have ends that member
   * image-pull, with no `ensureImage` before.
   */
  imagesWherePrepared?: boolean;
  /** What of run `runId` the pool holds now (containers, networks, bridges): nothing, once a sweep removed a dead run's. */
  leftovers?(runId: string): string[];
}

export interface RunFixture {
  session: RunSession;
  run: RunContext;
  group(name: string, tasks: readonly string[], id?: string): GroupProbe;
}

export type OpenRun = (extra?: Partial<RunContext>) => Promise<RunFixture>;
export type SkipUnless = (ctx: TestContext, can: boolean, reason: string) => void;

/** Skips the case where `target` says it cannot do `what` (`cannot`), with the target's reason. */
export function skipWhereCannot(skipUnless: SkipUnless, ctx: TestContext, target: ConformanceTarget, what: "files" | "commands"): void {
  skipUnless(ctx, target.cannot?.[what] === undefined, target.cannot?.[what] ?? "");
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the member's output (logs(key), from its start) holds `text`; fails when it ends without it. */
export function outputOf(handle: GroupHandle, key: string, text: string, timeoutMs = 30_000): Promise<string> {
  const stream = handle.logs(key);
  let seen = "";
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`${key} did not print ${JSON.stringify(text)} within ${timeoutMs} ms (it printed ${JSON.stringify(seen)})`)),
      timeoutMs,
    );
    const done = (error?: Error) => {
      clearTimeout(timer);
      stream.destroy();
      if (error) reject(error);
      else resolve(seen);
    };
    stream.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) done();
    });
    stream.on("error", (error) => done(error));
    stream.on("end", () =>
      done(
        seen.includes(text)
          ? undefined
          : new Error(`${key} ended without printing ${JSON.stringify(text)} (it printed ${JSON.stringify(seen)})`),
      ),
    );
  });
}

/** What the member's output (logs(key), from its start) holds after `ms`, or when it ended before. */
export function outputWithin(handle: GroupHandle, key: string, ms: number): Promise<string> {
  const stream = handle.logs(key);
  let seen = "";
  return new Promise<string>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      stream.destroy();
      resolve(seen);
    };
    const timer = setTimeout(done, ms);
    stream.on("data", (chunk: Buffer) => (seen += chunk.toString()));
    stream.on("error", (error) => (clearTimeout(timer), reject(error)));
    stream.on("end", done);
  });
}
