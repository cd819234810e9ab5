/**
 * A closed output never crashes troupe: real `troupe` processes whose stdout
 * is a pipe to a real `head`, which exits after a line or two (EPIPE on
 * troupe's next write), and a SIGHUP as a closed terminal sends it.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStore } from "../../src/store/index.js";
import {
  BIN,
  bridgesOfRun,
  ensureBuilt,
  processesWith,
  random,
  ROOT,
  sleepMarkers,
  TestHome,
  troupe,
  waitFor,
  type RunRecord,
} from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";

let home: TestHome;
const sleepers = sleepMarkers(11);

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(() => {
  sleepers.killAll();
  home?.remove();
});

interface Piped {
  /** What `head` printed. */
  stdout: string;
  /** troupe's stderr. */
  stderr: string;
  /** troupe's exit code (bash's PIPESTATUS). */
  code: number;
}

/** `troupe ARGS | head -N` in bash; resolves with troupe's own exit code. */
function throughHead(args: string[], lines: number, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Piped> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const script = `${quoted} 2>"$ERRFILE" | head -${lines}; echo "troupe-exit=\${PIPESTATUS[0]}" >&2`;
  const errFile = `${home.specs}/stderr-${random()}`;
  const child = spawn("bash", ["-c", script], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", TROUPE_HOME: home.home, TROUPE_RUNTIME: "host", ERRFILE: errFile, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let status = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (status += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      const code = /troupe-exit=(\d+)/.exec(status)?.[1];
      if (code === undefined) return reject(new Error(`no exit code from bash (timed out?): ${status}`));
      resolve({ stdout, stderr: readFileSync(errFile, "utf8"), code: Number(code) });
    });
  });
}

/** podman's own answer, one ID a line (the container runtime's tests need CONTAINERS_CONF here, as npm test sets it). */
const podmanList = (args: string[]): string[] =>
  execFileSync("podman", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 })
    .split("\n")
    .filter(Boolean);

const noCrash = (stderr: string) => {
  expect(stderr).not.toMatch(/EPIPE|internal error|\n\s+at /);
};

function reasonsOf(runId: string): string[] {
  const store = RunStore.open(home.home);
  try {
    return store.transitions(runId).map((t) => t.reason);
  } finally {
    store.close();
  }
}

async function record(runId: string): Promise<RunRecord> {
  const query = await troupe(["query", runId, "--output", "json"], { home: home.home });
  expect(query.code, query.stderr).toBe(0);
  return JSON.parse(query.stdout) as RunRecord;
}

/** Tasks that go on writing after `head` has gone. */
const CHATTY = (name: string) => `workflow:
  name: ${name}
  tasks:
  - name: talker
    image: alpine:3.18
    command: ["sh", "-c", "for i in $(seq 1 200); do echo line $i; done; sleep 1; for i in $(seq 1 200); do echo more $i; done; echo the-end"]
  - name: other
    image: alpine:3.18
    command: ["sh", "-c", "sleep 1.5; echo other-done"]
`;

describe("troupe run with its output closed", () => {
  it.each(["host", "container"])(
    "`troupe run X | head -2` (%s runtime): the run goes on to its end, cleaned up, its output in its logs; troupe says so on stderr",
    async (runtime) => {
      const name = `chatty-${random()}`;
      const piped = await throughHead(["run", home.spec(name, CHATTY(name)), "--runtime", runtime], 2);
      noCrash(piped.stderr);
      const runId = /troupe: run (\S+):/.exec(piped.stdout)?.[1];
      expect(runId, piped.stdout).toBeDefined();
      expect(piped.stderr).toContain(`run ${runId} goes on`);
      const run = await record(runId!);
      expect(run.status, JSON.stringify(run, null, 1)).toBe("COMPLETED");
      expect(piped.code, piped.stderr).toBe(0);
      expect(home.log(runId!, "talker")).toMatch(/more 200\nthe-end\n$/);
      expect(home.log(runId!, "other")).toBe("other-done\n");
      expect(bridgesOfRun(runId!)).toEqual([]);
      if (runtime === "container") {
        expect(podmanList(["ps", "-a", "--filter", `label=troupe.run=${runId}`, "-q"])).toEqual([]);
        expect(podmanList(["network", "ls", "--filter", `label=troupe.run=${runId}`, "-q"])).toEqual([]);
      }
    },
  );

  it("a closed terminal (SIGHUP, once or twice) cancels the run with that reason and cleans up (exit 130)", async () => {
    const marker = sleepers.sleep(300);
    const name = `hangup-${random()}`;
    const file = home.spec(
      name,
      `workflow:\n  name: ${name}\n  tasks:\n  - name: nap\n    image: alpine:3.18\n    command: ["sleep", "${marker}"]\n`,
    );
    let sent = false;
    const result = await troupe(["run", file], {
      home: home.home,
      timeoutMs: 30_000,
      onSpawn: (child) => {
        const poll = setInterval(() => {
          if (processesWith(marker).length === 0) return;
          clearInterval(poll);
          sent = true;
          // Twice, as a closed terminal may: the kernel to the foreground job, the shell to its jobs.
          child.kill("SIGHUP");
          setTimeout(() => child.kill("SIGHUP"), 5);
        }, 50);
        child.on("close", () => clearInterval(poll));
      },
    });
    expect(sent, result.stdout).toBe(true);
    noCrash(result.stderr);
    expect(result.code, `${result.signal} ${result.stdout}${result.stderr}`).toBe(130);
    const runId = /troupe: run (\S+):/.exec(result.stdout)![1]!;
    const run = await record(runId);
    expect(run.status).toBe("FAILED_CANCELED");
    // One cancel, with its reason; the second SIGHUP did not force it.
    expect(reasonsOf(runId).filter((r) => /SIGHUP/.test(r))).toContain("canceled: the terminal was closed (SIGHUP)");
    expect(reasonsOf(runId).filter((r) => /forced/.test(r))).toEqual([]);
    expect(
      await waitFor(
        () => processesWith(marker),
        (p) => p.length === 0,
        30_000,
      ),
    ).toEqual([]);
    expect(bridgesOfRun(runId)).toEqual([]);
  });
});

describe("the log commands with their output closed", () => {
  let runId: string;
  let server: StartedServer | undefined;
  let token: string;
  let serverHome: string;

  beforeAll(async () => {
    const name = `long-${random()}`;
    const run = await troupe(
      [
        "run",
        home.spec(name, `workflow:\n  name: ${name}\n  tasks:\n  - name: a\n    image: alpine:3.18\n    command: ["seq", "1", "300000"]\n`),
      ],
      { home: home.home, env: { TROUPE_RUNTIME: "host" } },
    );
    expect(run.code, run.stderr).toBe(0);
    runId = /troupe: run (\S+):/.exec(run.stdout)![1]!;
    serverHome = home.outsideTmp();
    const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
    token = created.stdout.trim();
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("`troupe logs RUN | head -1` prints the first line and exits 0, no stack trace", async () => {
    const piped = await throughHead(["logs", runId], 1);
    noCrash(piped.stderr);
    expect(piped.stdout).toBe("1\n");
    expect(piped.code).toBe(0);
  });

  it("`troupe workflow logs ID | head -1`, and with -f while the task still writes: exit 0 once head has gone", async () => {
    const client = { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() };
    const submit = (text: string) =>
      troupe(["workflow", "submit", home.spec("s", text)], { home: home.home, env: client }).then(
        (r) => /submitted (\S+)/.exec(r.stdout)?.[1] ?? `(${r.stdout}${r.stderr})`,
      );
    const big = await submit(
      `workflow:\n  name: big\n  tasks:\n  - name: a\n    image: alpine:3.18\n    command: ["seq", "1", "300000"]\n`,
    );
    for (let i = 0; i < 100; i++) {
      const q = await troupe(["workflow", "query", big, "--output", "json"], { home: home.home, env: client });
      if (/"status": "COMPLETED"/.test(q.stdout.split("\n").slice(0, 6).join("\n"))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const piped = await throughHead(["workflow", "logs", big], 1, client);
    noCrash(piped.stderr);
    expect(piped.stdout).toBe("1\n");
    expect(piped.code).toBe(0);

    const marker = sleepers.sleep(0); // 0.1 s and a bit, a marker only this test uses
    const ticking = await submit(
      `workflow:\n  name: ticks\n  tasks:\n  - name: a\n    image: alpine:3.18\n    command: ["sh", "-c", "i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep ${marker}; done"]\n`,
    );
    const followed = await throughHead(["workflow", "logs", ticking, "-f"], 1, client, 30_000);
    noCrash(followed.stderr);
    expect(followed.stdout).toBe("tick 0\n");
    expect(followed.code).toBe(0);
    // The follower ended when head left, not with the task (600 ticks, a minute): the task still runs.
    const query = await troupe(["workflow", "query", ticking, "--output", "json"], { home: home.home, env: client });
    expect((JSON.parse(query.stdout) as RunRecord).status, query.stderr).toBe("RUNNING");
    await troupe(["workflow", "cancel", ticking, "--force"], { home: home.home, env: client });
  }, 60_000);

  it("(last) a closed terminal (SIGHUP) stops the server as SIGTERM does: it says so and exits 0", async () => {
    const { child } = server!;
    const exited = new Promise<[number | null, string | null]>((resolve) => child.once("exit", (code, signal) => resolve([code, signal])));
    child.kill("SIGHUP");
    expect(await exited).toEqual([0, null]);
    expect(server!.out()).toMatch(/SIGHUP: stopping/);
  });
});
