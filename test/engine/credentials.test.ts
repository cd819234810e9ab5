/**
 * The engine's side of `credentials:` (RunOptions.credentials): what a task
 * is given reaches its launch (environment, files, the run's secrets, every
 * task of the run carrying them), a pool whose logs are streams has them
 * masked in the copy, and nothing of them reaches the record; a task that
 * asks for credentials where none were given fails to start, saying so. The
 * pool is a small in-memory one that places at once and streams what its
 * launch's environment says.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { WorkflowRun, type RunOptions } from "../../src/engine/index.js";
import type { CredentialInjection, GroupHandle, GroupListener, GroupRef, MemberRef, RunSession, TaskLaunch } from "../../src/port/index.js";
import { FakeClock, InertGroupParts, MemoryRecorder, flush } from "./fakes.js";
import { compileYaml } from "./plan-helpers.js";

const SECRET = "ghp_engineSECRET0123456789";

/** Places at once, is ready at once, and "runs" a launch by streaming its TOKEN variable; exits 0. */
class InstantGroup extends InertGroupParts implements GroupHandle {
  readonly id = "instant";
  readonly launches: TaskLaunch[] = [];
  constructor(private readonly listener: GroupListener) {
    super();
  }
  place(members: readonly MemberRef[]): void {
    members.forEach((m, i) => this.listener.placed(m.key, { address: `10.1.0.${i + 1}`, hostName: m.taskName, node: "n" }));
  }
  prepare(launch: TaskLaunch): void {
    this.launches.push(launch);
    queueMicrotask(() => this.listener.ready(launch.key));
  }
  async release(keys: readonly string[]): Promise<void> {
    setTimeout(() => keys.forEach((key) => this.listener.exited(key, { kind: "exited", code: 0 })), 50);
  }
  override logs(key: string): Readable {
    const token = this.launches.find((l) => l.key === key)?.env.TOKEN ?? "none";
    // The secret cut across two chunks, as a cluster's stream may cut it.
    return Readable.from([Buffer.from(`token=${token.slice(0, 7)}`), Buffer.from(`${token.slice(7)} done\n`)]);
  }
}

class InstantPool implements RunSession {
  readonly groups: InstantGroup[] = [];
  openGroup(_group: GroupRef, listener: GroupListener): GroupHandle {
    const handle = new InstantGroup(listener);
    this.groups.push(handle);
    return handle;
  }
  async close(): Promise<void> {}
}

const WORKFLOW = `
  workflow:
    name: creds
    tasks:
      - name: given
        image: alpine
        command: ["show"]
        credentials:
          api: {TOKEN: token}
          files: /etc/creds
      - name: plain
        image: alpine
        command: ["show"]
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function run(credentials: RunOptions["credentials"]) {
  const plan = await compileYaml(WORKFLOW);
  const recorder = new MemoryRecorder();
  const logDir = mkdtempSync(join(tmpdir(), "troupe-engine-creds-"));
  dirs.push(logDir);
  recorder.logPath = (_run, group, task, retryId) => join(logDir, group, task, `${retryId}.log`);
  const pool = new InstantPool();
  const workflow = new WorkflowRun({
    runId: "wf-creds",
    plan,
    session: pool,
    capabilities: { placement: "cluster", localLogs: false },
    recorder,
    dataDir: "/data/wf-creds",
    capacity: { cpu: 1e6, gpu: 0, memoryBytes: 1e15 },
    maxParallel: 100,
    maxRetries: 0,
    leadHeadStartMs: 0,
    clock: new FakeClock(),
    credentials,
  });
  const result = await workflow.start();
  await flush();
  return { result, recorder, pool, log: (task: string) => readLog(recorder.logPath("wf-creds", `${task}-group`, task, 0)) };
}

async function readLog(path: string): Promise<string> {
  for (let waited = 0; waited < 5_000 && !(existsSync(path) && readFileSync(path, "utf8").endsWith("\n")); waited += 10)
    await new Promise((r) => setTimeout(r, 10));
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

describe("credentials in the engine", () => {
  it("gives a task its injection, masks the run's secrets in every copied log, and records none", async () => {
    const injection: CredentialInjection = {
      env: { TOKEN: SECRET },
      files: [{ path: "/etc/creds/key", contents: Buffer.from(SECRET), mode: 0o400 }],
      secrets: [SECRET],
    };
    const { result, recorder, pool, log } = await run(new Map([["given", injection]]));
    expect(result.status).toBe("COMPLETED");
    const launches = pool.groups.flatMap((g) => g.launches);
    const given = launches.find((l) => l.taskName === "given")!;
    expect(given.env.TOKEN).toBe(SECRET);
    expect(given.files).toEqual([{ path: "/etc/creds/key", contents: Buffer.from(SECRET), mode: 0o400 }]);
    expect(given.secrets).toEqual([SECRET]);
    // A task without credentials still masks the run's secrets (another task may hand one on through a file).
    expect(launches.find((l) => l.taskName === "plain")!.secrets).toEqual([SECRET]);
    expect(await log("given")).toBe("token=[MASKED] done\n");
    expect(await log("plain")).toBe("token=none done\n");
    expect(JSON.stringify([...recorder.transitions, ...recorder.attempts.values()])).not.toContain(SECRET);
  });

  it("fails a task that asks for credentials at its start where the run was given none", async () => {
    const { result, recorder } = await run(undefined);
    expect(result.status).toBe("FAILED_START_ERROR");
    const reasons = recorder.transitions.map((t) => t.reason).join("\n");
    expect(reasons).toContain("`credentials:` of task given cannot be given here: its run was given no credentials");
  });
});
