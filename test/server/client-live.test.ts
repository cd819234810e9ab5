/**
 * Acceptance: the server's client shows a run as `troupe run` does, live. A
 * real `troupe server` on loopback and real `troupe workflow ...` processes:
 * `submit --wait` prints status changes and every task's prefixed output
 * while the run goes on (a task waits for a file the test makes only once
 * the client has shown its first line), then the summary and the failed
 * tasks' last lines; `workflow logs` prints every task's output prefixed,
 * `-f` follows all of them until the run ends, `--error` the error logs.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, TestHome, ensureBuilt, random, troupe, waitFor } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let env: Record<string, string>;
/** Where the tasks look for the files that let them go on (outside /tmp: tasks have their own). */
let gates: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  gates = home.outsideTmp();
  const token = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: token.stdout.trim(), XDG_CONFIG_HOME: home.outsideTmp() };
}, 200_000);

afterAll(async () => {
  await server?.stop();
  home?.remove();
});

const client = (args: string[], timeoutMs = 30_000) => troupe(args, { home: home.home, env, timeoutMs });

/** A client process whose output is watched as it comes. */
function started(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, NO_COLOR: "1", FORCE_COLOR: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  void exited.then(() => clearTimeout(killer));
  return { child, stdout: () => stdout, stderr: () => stderr, exited, running: () => child.exitCode === null && child.signalCode === null };
}

/** A task that prints a line, waits for the gate file, prints another. */
const gated = (task: string, gate: string) => `  - name: ${task}
    image: alpine:3.18
    command: ["sh", "-c", "echo ${task} first; while [ ! -e ${gate} ]; do sleep 0.05; done; echo ${task} second"]
`;

describe("troupe workflow submit --wait", () => {
  let runId: string;

  it("shows status changes and every task's prefixed output as they happen, then the summary and the failed tasks' last lines", async () => {
    const gate = path.join(gates, `go-${random()}`);
    const file = home.spec(
      "live",
      `workflow:
  name: live-${random()}
  tasks:
${gated("talker", gate)}  - name: quitter
    image: alpine:3.18
    command: ["sh", "-c", "echo bye; echo it went wrong >&2; exit 3"]
`,
    );
    const watched = started(["workflow", "submit", file, "--wait"]);
    // While talker waits, the client has shown what happened so far: the run is still going.
    const early = await waitFor(watched.stdout, (out) => /talker +\| talker first/.test(out) && /quitter +: FAILED/.test(out), 20_000);
    expect(early, watched.stderr()).toMatch(/talker +\| talker first/);
    expect(early).toMatch(/quitter +\| bye\n/);
    expect(early).toMatch(/quitter +\| it went wrong\n/);
    expect(early).toMatch(/quitter +: FAILED exited with 3/);
    expect(early).toMatch(/talker +: RUNNING/);
    expect(early).not.toMatch(/talker second/);
    expect(watched.running()).toBe(true);

    fs.writeFileSync(gate, "");
    expect(await watched.exited).toBe(1);
    const out = watched.stdout();
    runId = /^submitted (\S+)/.exec(out)![1]!;
    const order = ["talker | talker first", "talker | talker second", "talker : COMPLETED", `run ${runId}: FAILED`].map((text) =>
      out.indexOf(text.replace(/^(\w+) ([|:])/, (_m, task: string, mark: string) => `${task.padEnd(7)} ${mark}`)),
    );
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(out).toMatch(/^TASK +GROUP +STATUS/m);
    expect(out).toMatch(/^quitter +quitter-group +FAILED +3 /m);
    // The failed task's last lines, under the summary.
    expect(out.slice(out.indexOf(`run ${runId}: FAILED`))).toContain(
      `the last lines of the failed tasks (\`troupe workflow logs ${runId} --error\`):\n--- quitter retry 0: FAILED (exit code 3) ---\nbye\nit went wrong\n`,
    );
  });

  it("Ctrl-C stops following (exit 130); the workflow goes on on the server", async () => {
    const gate = path.join(gates, `go-${random()}`);
    const file = home.spec("interrupted", `workflow:\n  name: interrupted-${random()}\n  tasks:\n${gated("worker", gate)}`);
    const watched = started(["workflow", "submit", file, "--wait"]);
    await waitFor(watched.stdout, (out) => out.includes("worker first"), 20_000);
    watched.child.kill("SIGINT");
    expect(await watched.exited).toBe(130);
    const id = /^submitted (\S+)/.exec(watched.stdout())![1]!;
    expect(watched.stdout()).toContain(`stopped following ${id}; it goes on on the server (\`troupe workflow cancel ${id}\` ends it)`);
    const status = async () =>
      (JSON.parse((await client(["workflow", "query", id, "--output", "json"])).stdout) as { status: string }).status;
    expect(await status()).toBe("RUNNING");
    fs.writeFileSync(gate, "");
    for (let i = 0; i < 100 && (await status()) !== "COMPLETED"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await status()).toBe("COMPLETED");
  });

  it("with --output json: the live view on stderr, the record alone on stdout", async () => {
    const file = home.spec(
      "json",
      `workflow:\n  name: json-${random()}\n  tasks:\n  - {name: only, image: alpine:3.18, command: ["echo", "hello"]}\n`,
    );
    const result = await client(["workflow", "submit", file, "--wait", "--output", "json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "COMPLETED" });
    expect(result.stderr).toMatch(/only +\| hello\n/);
    expect(result.stderr).toMatch(/only +: COMPLETED/);
  });

  it("restart --wait shows the new run the same way", async () => {
    const result = await client(["workflow", "restart", runId, "--wait"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^submitted \S+ \(a restart of /);
    expect(result.stdout).toMatch(/quitter +\| bye\n/);
    expect(result.stdout).not.toMatch(/talker +\|/); // its group completed before: reused, not run again
    expect(result.stdout).toMatch(/--- quitter retry 0: FAILED \(exit code 3\) ---/);
  });

  describe("troupe workflow logs", () => {
    it("without --task prints every task's output, each line prefixed as in the live view; -n the last lines of each", async () => {
      const all = await client(["workflow", "logs", runId]);
      expect(all.code, all.stderr).toBe(0);
      const lines = all.stdout.trimEnd().split("\n");
      expect(lines.sort()).toEqual(["quitter | bye", "quitter | it went wrong", "talker  | talker first", "talker  | talker second"]);
      const last = await client(["workflow", "logs", runId, "-n", "1"]);
      expect(last.stdout.trimEnd().split("\n").sort()).toEqual(["quitter | it went wrong", "talker  | talker second"]);
      const one = await client(["workflow", "logs", runId, "--task", "talker"]);
      expect(one.stdout).toBe("talker first\ntalker second\n");
    });

    it("--error shows the error logs: the last lines of each failed attempt, with how it ended", async () => {
      const errors = await client(["workflow", "logs", runId, "--error"]);
      expect(errors.code, errors.stderr).toBe(0);
      expect(errors.stdout).toBe("--- quitter retry 0: FAILED (exit code 3) ---\nbye\nit went wrong\n");
      expect((await client(["workflow", "logs", runId, "--error", "--task", "talker"])).stdout).toBe("");
      expect((await client(["workflow", "logs", runId, "--error", "-n", "1"])).stdout).toBe(
        "--- quitter retry 0: FAILED (exit code 3) ---\nit went wrong\n",
      );
    });

    it("-f follows every task until the run ends", async () => {
      const [gateA, gateB] = [path.join(gates, `a-${random()}`), path.join(gates, `b-${random()}`)];
      const file = home.spec("follow", `workflow:\n  name: follow-${random()}\n  tasks:\n${gated("left", gateA)}${gated("right", gateB)}`);
      const submitted = await client(["workflow", "submit", file, "--output", "json"]);
      const id = (JSON.parse(submitted.stdout) as { id: string }).id;
      const followed = started(["workflow", "logs", id, "-f"]);
      const both = await waitFor(followed.stdout, (out) => out.includes("left first") && out.includes("right first"), 20_000);
      expect(both).toMatch(/^left +\| left first$/m);
      expect(both).toMatch(/^right +\| right first$/m);
      fs.writeFileSync(gateA, "");
      await waitFor(followed.stdout, (out) => out.includes("left second"), 20_000);
      // One task has ended, the other not: still following.
      expect(followed.running()).toBe(true);
      fs.writeFileSync(gateB, "");
      expect(await followed.exited).toBe(0);
      expect(followed.stdout().trimEnd().split("\n").sort()).toEqual([
        "left  | left first",
        "left  | left second",
        "right | right first",
        "right | right second",
      ]);
    });

    it("--retry-id without --task in a workflow of several tasks is bad usage", async () => {
      const result = await client(["workflow", "logs", runId, "--retry-id", "0"]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--retry-id needs --task/);
    });
  });
});
