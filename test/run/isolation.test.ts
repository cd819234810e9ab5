/**
 * Acceptance: what the host runtime promises about isolation and clean-up,
 * checked from outside with real processes and namespaces: cancel leaves no
 * process, link, rule or mount behind; setsid and double forks do not escape;
 * each task has a private /tmp and its own `files:`; `environment` and
 * `$(VAR)` expansion.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  IS_ROOT,
  ISOLATION_CASES,
  TestHome,
  bridgesOfRun,
  describeRun,
  ensureBuilt,
  iptablesRulesOf,
  killStartedRuns,
  linksOfBridges,
  ms,
  mountsMentioning,
  namespaceHolders,
  namespacesStillInUse,
  ownNamespacesOf,
  processesWith,
  random,
  runJson,
  troupe,
  taskOf,
  waitFor,
  type TroupeResult,
  type RunRecord,
  sleepMarkers,
  STOP_GRACE_MS,
} from "./helpers.js";

let home: TestHome;
const sleepers = sleepMarkers(3);
const markedSleep = (seconds: number): string => sleepers.sleep(seconds);

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterEach(() => {
  killStartedRuns();
  sleepers.killAll();
});

afterAll(() => home?.remove());

/** Starts a run, waits until `ready(runId)` holds, sends the signals, and returns the result and what was seen while it ran. */
async function runAndSignal(
  file: string,
  options: {
    isolation: string;
    env?: Record<string, string>;
    ready: (runId: string) => boolean;
    signals: Array<{ signal: NodeJS.Signals; afterMs: number }>;
  },
): Promise<{ result: TroupeResult & { record: RunRecord }; runId: string; bridges: string[]; signaledAt: number[] }> {
  let runId: string | undefined;
  let bridges: string[] = [];
  const signaledAt: number[] = [];
  const args = ["run", file, "--isolation", options.isolation, "--output", "json"];
  const result = await troupe(args, {
    home: home.home,
    env: options.env,
    timeoutMs: 20_000,
    onSpawn: (child) => {
      child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
      const poll = setInterval(() => {
        if (!runId || !options.ready(runId)) return;
        clearInterval(poll);
        bridges = bridgesOfRun(runId);
        for (const { signal, afterMs } of options.signals) {
          setTimeout(() => {
            signaledAt.push(Date.now());
            child.kill(signal);
          }, afterMs);
        }
      }, 20);
      child.on("close", () => clearInterval(poll));
    },
  });
  if (!runId) throw new Error(`the run never said its id\n${describeRun(result)}`);
  // A run killed outright prints no record; every other end prints one.
  let record: RunRecord = { id: runId, name: "", status: "(no record)", submit_time: "", start_time: null, end_time: null, groups: [] };
  if (result.signal !== "SIGKILL") {
    try {
      record = JSON.parse(result.stdout) as RunRecord;
    } catch {
      throw new Error(`troupe ${args.join(" ")} printed no JSON record\n${describeRun(result)}\nstdout:\n${result.stdout}`);
    }
  }
  return { result: { ...result, record }, runId, bridges, signaledAt };
}

const logHas = (runId: string, task: string, text: string) => {
  const file = home.logPath(runId, task);
  return fs.existsSync(file) && fs.readFileSync(file, "utf8").includes(text);
};

describe.each(ISOLATION_CASES)("cancel, --isolation $isolation, sandboxes by $builder.name", ({ isolation, builder }) => {
  it("SIGINT while RUNNING exits 130, marks tasks FAILED_CANCELED, and leaves no process, namespace, link, rule or mount behind", async () => {
    const [s1, s2, s3, s4, s5] = [markedSleep(1000), markedSleep(1000), markedSleep(1000), markedSleep(1000), markedSleep(1000)];
    const name = `cancel-${random()}`;
    const file = home.spec(
      "cancel",
      `workflow:
  name: ${name}
  groups:
  - name: busy
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo started; sleep ${s1}"]
    - name: forker
      image: alpine:3.18
      command: ["sh", "-c", "setsid sh -c 'sleep ${s2}' & (sleep ${s3} &); echo started; sleep ${s4}"]
    - name: polite
      image: alpine:3.18
      command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started; sleep ${s5} & wait"]
  - name: later
    tasks:
    - name: consumer
      image: alpine:3.18
      command: ["echo", "never runs"]
      inputs:
      - task: lead
`,
    );
    let seenWhileRunning: string[] = [];
    const namespaces = new Set<string>();
    let runProcesses: { identities: Set<string>; since: number } | undefined;
    const { result, runId, bridges } = await runAndSignal(file, {
      isolation,
      env: builder.env,
      ready: (id) => {
        if (!["lead", "forker", "polite"].every((t) => logHas(id, t, "started"))) return false;
        seenWhileRunning = [s1, s2, s3, s4, s5].filter((m) => processesWith(m).length > 0);
        if (seenWhileRunning.length < 5) return false;
        for (const m of [s1, s2, s3, s4, s5])
          for (const { pid } of processesWith(m)) ownNamespacesOf(pid).forEach((ns) => namespaces.add(ns));
        runProcesses = { identities: namespaceHolders(namespaces), since: Date.now() };
        return true;
      },
      signals: [{ signal: "SIGINT", afterMs: 0 }],
    });
    // The probes see what they look for while the run is alive (so their silence afterwards means something).
    expect(seenWhileRunning).toHaveLength(5);
    const kinds = new Set([...namespaces].map((ns) => ns.split(":")[0]));
    expect([...kinds].sort()).toEqual(isolation === "netns" ? ["ipc", "mnt", "net", "pid", "uts"] : ["ipc", "mnt", "pid", "uts"]);
    if (isolation === "netns") expect(bridges, "the run's bridge while it ran").toHaveLength(1);

    expect(result.code, describeRun(result)).toBe(130);
    expect(result.stderr.split("\n")[0]).toMatch(builder.firstLine);
    expect(result.record.id).toBe(runId);
    expect(result.record.status).toBe("FAILED_CANCELED");
    for (const task of ["lead", "forker", "polite", "consumer"]) expect(taskOf(result.record, task).status, task).toBe("FAILED_CANCELED");
    for (const group of result.record.groups) expect(group.status, group.name).toBe("FAILED_CANCELED");
    // The graceful signal reached the command before anything was killed.
    expect(home.log(runId, "polite")).toContain("got TERM");
    // The commands went at the polite signal (SIGTERM: 143; polite's trap: 0) and troupe ended on its own, not at
    // the test's deadline. The record says when: the tasks ended at the cancel, the run once its last process was
    // gone (the forked sleepers with their sandboxes), before the grace's kill could have come.
    expect(result.timedOut, describeRun(result)).toBe(false);
    expect(["lead", "forker", "polite"].map((t) => taskOf(result.record, t).exit_code)).toEqual([143, 143, 0]);
    const cancelAt = Math.max(...result.record.groups.flatMap((g) => g.tasks.map((t) => ms(t.end_time))));
    expect(ms(result.record.end_time) - cancelAt, describeRun(result)).toBeLessThan(STOP_GRACE_MS);

    // Nothing left: processes, links of the run's bridge, iptables rules, mounts, sandboxes.
    for (const marker of [s1, s2, s3, s4, s5]) expect(processesWith(marker), marker).toEqual([]);
    expect(processesWith(runId)).toEqual([]);
    // Whatever of the run would be left is one of its processes while it ran, or their child (see namespacesStillInUse).
    expect(namespacesStillInUse(namespaces, { runProcesses })).toEqual([]);
    expect(bridgesOfRun(runId)).toEqual([]);
    expect(linksOfBridges(bridges)).toEqual([]);
    expect(iptablesRulesOf(runId)).toEqual([]);
    expect(mountsMentioning(home.home)).toEqual([]);
    expect(fs.existsSync(path.join(home.home, "runs", runId, "sandboxes"))).toBe(false);
  });
});

describe("cancel, more signals", () => {
  it("SIGTERM cancels like SIGINT (netns)", async () => {
    const sleep = markedSleep(1000);
    const file = home.spec(
      "cancel-term",
      `workflow:
  name: cancel-term-${random()}
  tasks:
  - name: sleeper
    image: alpine:3.18
    command: ["sh", "-c", "echo started; sleep ${sleep}"]
`,
    );
    const { result, runId, bridges } = await runAndSignal(file, {
      isolation: "netns",
      ready: (id) => logHas(id, "sleeper", "started"),
      signals: [{ signal: "SIGTERM", afterMs: 0 }],
    });
    expect(result.code, describeRun(result)).toBe(130);
    expect(taskOf(result.record, "sleeper").status).toBe("FAILED_CANCELED");
    expect(processesWith(sleep)).toEqual([]);
    expect(bridges).toHaveLength(1);
    expect(linksOfBridges(bridges)).toEqual([]);
    expect(iptablesRulesOf(runId)).toEqual([]);
    expect(mountsMentioning(home.home)).toEqual([]);
  });

  it("a second SIGINT forces: a task that ignores SIGTERM is killed at once instead of after the grace period", async () => {
    const sleep = markedSleep(1000);
    const file = home.spec(
      "cancel-force",
      `workflow:
  name: cancel-force-${random()}
  tasks:
  - name: stubborn
    image: alpine:3.18
    command: ["sh", "-c", "trap '' TERM INT; echo started; sleep ${sleep}"]
`,
    );
    const { result, signaledAt } = await runAndSignal(file, {
      isolation: "none",
      ready: (id) => logHas(id, "stubborn", "started"),
      signals: [
        { signal: "SIGINT", afterMs: 0 },
        { signal: "SIGINT", afterMs: 300 },
      ],
    });
    expect(signaledAt).toHaveLength(2);
    expect(result.code, describeRun(result)).toBe(130);
    const stubborn = taskOf(result.record, "stubborn");
    expect(stubborn.status).toBe("FAILED_CANCELED");
    expect(result.stderr).toMatch(/forcing/);
    // The task ended (in the record) at the first signal; the run, once its last process was gone: killed at the
    // second signal, before the grace period the first one started could have passed.
    expect(ms(result.record.end_time) - ms(stubborn.end_time), describeRun(result)).toBeLessThan(STOP_GRACE_MS);
    expect(processesWith(sleep)).toEqual([]);
  });
});

describe("a killed run", () => {
  it("SIGKILL to troupe: its tasks die with it, and the next run sweeps the bridge and rules it left", async () => {
    const sleep = markedSleep(1000);
    const name = `killed-${random()}`;
    const file = home.spec(
      "killed",
      `workflow:
  name: ${name}
  tasks:
  - name: sleeper
    image: alpine:3.18
    command: ["sh", "-c", "echo started; sleep ${sleep}"]
`,
    );
    const { result, runId, bridges } = await runAndSignal(file, {
      isolation: "netns",
      ready: (id) => logHas(id, "sleeper", "started") && processesWith(sleep).length > 0,
      signals: [{ signal: "SIGKILL", afterMs: 0 }],
    });
    expect(result.signal).toBe("SIGKILL");
    expect(bridges).toHaveLength(1);
    expect(
      await waitFor(
        () => processesWith(sleep),
        (p) => p.length === 0,
        10_000,
      ),
    ).toEqual([]);
    // troupe had no chance to clean up: its bridge is still there.
    expect(bridgesOfRun(runId)).toEqual(bridges);
    // Any later run clears what a dead troupe left.
    const next = await runJson(
      home.spec("after-kill", `workflow:\n  name: after-${random()}\n  tasks:\n  - {name: a, image: x, command: [true]}\n`),
      {
        home: home.home,
        isolation: "netns",
      },
    );
    expect(next.code, describeRun(next)).toBe(0);
    expect(bridgesOfRun(runId)).toEqual([]);
    expect(linksOfBridges(bridges)).toEqual([]);
    expect(iptablesRulesOf(runId)).toEqual([]);
    expect(mountsMentioning(home.home)).toEqual([]);
  });
});

describe.each(ISOLATION_CASES)("isolation of tasks, --isolation $isolation, sandboxes by $builder.name", ({ isolation, builder }) => {
  it("setsid and double forks do not escape: nothing a task started outlives it", async () => {
    const [a, b, c] = [markedSleep(1000), markedSleep(1000), markedSleep(1000)];
    const file = home.spec(
      "escape",
      `workflow:
  name: escape-${random()}
  tasks:
  - name: escaper
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      setsid sh -c 'sleep ${a}' &
      (sleep ${b} &) &
      setsid -f sleep ${c} >/dev/null 2>&1 < /dev/null
      sleep 0.3
      for m in ${a} ${b} ${c}; do pgrep -f "sleep $m" >/dev/null && echo "running: $m"; done
      echo leaving
      exit 0
`,
    );
    let seen: string[] = [];
    const poller = setInterval(() => {
      const now = [a, b, c].filter((m) => processesWith(m).length > 0);
      if (now.length > seen.length) seen = now;
    }, 20);
    const run = await runJson(file, { home: home.home, isolation, env: builder.env, timeoutMs: 15_000 }).finally(() =>
      clearInterval(poller),
    );
    expect(run.code, describeRun(run)).toBe(0);
    expect(taskOf(run.record, "escaper")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(home.log(run.record.id, "escaper")).toBe(`running: ${a}\nrunning: ${b}\nrunning: ${c}\nleaving\n`);
    expect(seen, "the escapees were alive while the task ran").toEqual([a, b, c]);
    // The run ended with its command (it did not wait for the 1000 s sleepers): killed, not asked politely and
    // waited for.
    expect(ms(run.record.end_time) - ms(taskOf(run.record, "escaper").end_time), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
    for (const marker of [a, b, c]) expect(processesWith(marker), marker).toEqual([]);
  });

  it("two tasks writing /tmp/hello.txt never see each other's file; the host's /tmp/hello.txt is untouched", async () => {
    expect(IS_ROOT, "these acceptance tests run as root").toBe(true);
    const hostFile = "/tmp/hello.txt";
    const sentinel = `host sentinel ${random()}\n`;
    const existed = fs.existsSync(hostFile);
    const before = existed ? fs.readFileSync(hostFile) : undefined;
    const beforeMtime = existed ? fs.statSync(hostFile).mtimeMs : undefined;
    if (!existed) fs.writeFileSync(hostFile, sentinel);
    try {
      // Each writer checks that no /tmp/hello.txt is there, writes its own, waits while the other does the same, reads it back.
      const writer = (me: string, pause: string, lead = false) => `    - name: ${me}
${lead ? "      lead: true\n" : ""}      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        if [ -e /tmp/hello.txt ]; then echo "saw: $(cat /tmp/hello.txt)"; fi
        echo ${me} > /tmp/hello.txt
        sleep ${pause}
        echo "mine: $(cat /tmp/hello.txt)"
`;
      const file = home.spec(
        "private-tmp",
        `workflow:
  name: private-tmp-${random()}
  groups:
  - name: writers
    tasks:
${writer("first", "0.4", true)}${writer("second", "0.2")}  - name: alone
    tasks:
${writer("third", "0.1")}`,
      );
      const run = await runJson(file, { home: home.home, isolation, env: builder.env });
      expect(run.code, describeRun(run)).toBe(0);
      expect(home.log(run.record.id, "first")).toBe("mine: first\n");
      expect(home.log(run.record.id, "second")).toBe("mine: second\n");
      expect(home.log(run.record.id, "third")).toBe("mine: third\n");
      // The two writers really ran at the same time.
      const [first, second] = [taskOf(run.record, "first"), taskOf(run.record, "second")];
      expect(Date.parse(second.end_time!)).toBeGreaterThan(Date.parse(first.start_time!));
      if (existed) {
        expect(fs.readFileSync(hostFile).equals(before!)).toBe(true);
        expect(fs.statSync(hostFile).mtimeMs).toBe(beforeMtime);
      } else {
        expect(fs.readFileSync(hostFile, "utf8")).toBe(sentinel);
      }
    } finally {
      if (!existed && fs.existsSync(hostFile) && fs.readFileSync(hostFile, "utf8") === sentinel) fs.rmSync(hostFile);
    }
  });

  it("files: at absolute paths (under /tmp and under /etc) are the task's own; the host file system is untouched", async () => {
    const tag = random();
    const inTmp = `/tmp/troupe-accept-files-${tag}/in-tmp.txt`;
    const inEtc = `/etc/troupe-test-${tag}.conf`;
    const nested = `/etc/troupe-test-${tag}.d/nested/deep.conf`;
    const etcBefore = fs.readdirSync("/etc").sort();
    const file = home.spec(
      "files",
      `workflow:
  name: files-${tag}
  tasks:
  - name: owner
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      set -e
      cat ${inTmp} ${inEtc} ${nested}
      # The rest of /etc is still the host's.
      test -s /etc/passwd && echo "passwd still there"
    files:
    - path: ${inTmp}
      contents: |
        tmp file ${tag}
    - path: ${inEtc}
      contents: |
        key = value ${tag}
    - path: ${nested}
      contents: |
        output = {{output}}
  - name: neighbour
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      for f in ${inTmp} ${inEtc} ${nested}; do [ -e "$f" ] && echo "visible: $f"; done
      echo "neighbour done"
`,
    );
    const run = await runJson(file, { home: home.home, isolation, env: builder.env });
    expect(run.code, describeRun(run)).toBe(0);
    const outputDir = path.join(home.home, "runs", run.record.id, "outputs", "owner", "0");
    expect(home.log(run.record.id, "owner")).toBe(`tmp file ${tag}\nkey = value ${tag}\noutput = ${outputDir}\npasswd still there\n`);
    expect(home.log(run.record.id, "neighbour")).toBe("neighbour done\n");
    for (const p of [inTmp, inEtc, nested, path.dirname(inTmp), `/etc/troupe-test-${tag}.d`]) expect(fs.existsSync(p), p).toBe(false);
    expect(fs.readdirSync("/etc").sort()).toEqual(etcBefore);
    expect(mountsMentioning(tag)).toEqual([]);
    expect(mountsMentioning("troupe-ov")).toEqual([]);
  });

  it("environment is set, and $(VAR) expands in command and args ($$(VAR) escapes, unknown names stay)", async () => {
    const file = home.spec(
      "environment",
      `workflow:
  name: env-${random()}
  tasks:
  - name: greeter
    image: alpine:3.18
    environment:
      GREETING: hello world
      WHO: troupe
      OUT_DIR: "{{output}}"
    command:
    - sh
    - -c
    - 'echo "cmd: $(GREETING)"; echo "env: $GREETING, $WHO"; echo "arg1: $1"; echo "arg2: $2"; echo "arg3: $3"; echo "out: $OUT_DIR"'
    - sh
    args:
    - $(WHO)-arg
    - $$(WHO)
    - $(NOT_SET)
`,
    );
    const run = await runJson(file, { home: home.home, isolation, env: builder.env });
    expect(run.code, describeRun(run)).toBe(0);
    const outputDir = path.join(home.home, "runs", run.record.id, "outputs", "greeter", "0");
    expect(home.log(run.record.id, "greeter")).toBe(
      `cmd: hello world\nenv: hello world, troupe\narg1: troupe-arg\narg2: $(WHO)\narg3: $(NOT_SET)\nout: ${outputDir}\n`,
    );
  });
});

describe("nothing of these runs remains", () => {
  it("no process of ours and no mount of this TROUPE_HOME once the runs are over", async () => {
    expect(
      await waitFor(
        () => mountsMentioning(home.home),
        (m) => m.length === 0,
        10_000,
      ),
    ).toEqual([]);
    expect(processesWith(home.home)).toEqual([]);
  });
});
