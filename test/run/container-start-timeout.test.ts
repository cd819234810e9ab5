/**
 * The start timeout with real podman: a `podman run` that does not return. An OCI prestart hook (podman's
 * `hooks_dir`, in a containers.conf of this test's own) holds the creation of every container whose
 * environment has TROUPE_TEST_HANG=1 for 20 s, as a stuck hook, storage or runtime would; the others start as
 * usual. The member that hangs ends FAILED_START_TIMEOUT (3005) at `--start-timeout`, its group and run with
 * it, and nothing of the run is left in podman. Without the start timeout the run would wait for the hook. A
 * Ctrl-C while a member is held ends the run at once in its record (FAILED_CANCELED), not when the hook lets
 * go; troupe's clean-up of the engine's objects still waits for podman to answer.
 *
 * Needs the images of scripts/test-images.sh and, on this kind of machine, CONTAINERS_CONF (scripts/test.sh
 * exports both): this test's containers.conf is that one plus the hooks directory.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  containersOfRun,
  ensureBuilt,
  killStartedRuns,
  networksOfRun,
  removeRunLeftovers,
  runJson,
  taskOf,
  TestHome,
  troupe,
  waitFor,
  type RunRecord,
} from "./helpers.js";

const HOLD_S = 20;
const podman = fs.existsSync("/usr/bin/podman");
if (!podman) console.warn("test/run/container-start-timeout.test.ts skipped: podman is not installed");

describe.skipIf(!podman)("the start timeout on the container runtime (a podman run held by an OCI hook)", () => {
  let home: TestHome;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-start-timeout-"));
  const runIds = new Set<string>();

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const hooks = path.join(dir, "hooks.d");
    fs.mkdirSync(hooks);
    // The hook gets the container's state on stdin; its bundle's config.json holds the container's environment.
    const hold = path.join(dir, "hold.sh");
    fs.writeFileSync(
      hold,
      [
        "#!/bin/sh",
        `bundle=$(sed -n 's/.*"bundle": *"\\([^"]*\\)".*/\\1/p')`,
        `if grep -q 'TROUPE_TEST_HANG=1' "$bundle/config.json"; then sleep ${HOLD_S}; fi`,
        "exit 0",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    fs.writeFileSync(
      path.join(hooks, "hold.json"),
      JSON.stringify({ version: "1.0.0", hook: { path: hold }, when: { always: true }, stages: ["prestart"] }),
    );
    const base = process.env.CONTAINERS_CONF ? fs.readFileSync(process.env.CONTAINERS_CONF, "utf8") : "[engine]\n";
    const conf = base.includes("[engine]")
      ? base.replace("[engine]", `[engine]\nhooks_dir = ["${hooks}"]`)
      : `${base}\n[engine]\nhooks_dir = ["${hooks}"]\n`;
    fs.writeFileSync(path.join(dir, "containers.conf"), conf);
  }, 200_000);

  afterAll(() => {
    killStartedRuns();
    removeRunLeftovers(runIds);
    home?.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("ends a member whose podman run does not return FAILED_START_TIMEOUT (3005), its group and run so, and leaves nothing in podman", async () => {
    const file = home.spec(
      "held",
      `workflow:
  name: held
  groups:
  - name: pair
    tasks:
    - name: server
      lead: true
      image: alpine:3.18
      environment: {TROUPE_TEST_HANG: "1"}
      command: ["true"]
    - {name: client, image: alpine:3.18, command: ["sleep", "60"]}
`,
    );
    const result = await runJson(file, {
      home: home.home,
      env: { CONTAINERS_CONF: path.join(dir, "containers.conf") },
      extra: ["--runtime", "container", "--start-timeout", "4s"],
      timeoutMs: 120_000,
    });
    runIds.add(result.record.id);
    const server = taskOf(result.record, "server");
    expect(server.status, result.stderr).toBe("FAILED_START_TIMEOUT");
    expect(server.exit_code).toBe(3005);
    expect(server.reason).toMatch(/did not start in time: its sandbox was not up 4s after/);
    // Its sibling came up and waited at the barrier: ended with its lead, its command never run.
    expect(taskOf(result.record, "client").status).toBe("FAILED");
    expect(result.record.status).toBe("FAILED_START_TIMEOUT");
    expect(result.code).toBe(1);
    // Decided at the timeout, not when the hook let go (the record's own times).
    const ended = Date.parse(result.record.end_time!);
    expect(ended - Date.parse(result.record.start_time!)).toBeLessThan((HOLD_S - 5) * 1000);
    // Nothing of the run is left once the held podman run has ended too.
    const left = await waitFor(
      () => [...containersOfRun(result.record.id), ...networksOfRun(result.record.id)],
      (ids) => ids.length === 0,
      (HOLD_S + 30) * 1000,
      500,
    );
    expect(left).toEqual([]);
  }, 180_000);

  it("a Ctrl-C while a member's podman run is held ends the run FAILED_CANCELED at once in its record, and leaves nothing in podman", async () => {
    const file = home.spec(
      "held-cancel",
      `workflow:
  name: held-cancel
  tasks:
  - name: server
    image: alpine:3.18
    environment: {TROUPE_TEST_HANG: "1"}
    command: ["true"]
`,
    );
    let runId: string | undefined;
    let signalledAt = 0;
    const result = await troupe(["run", file, "--runtime", "container", "--output", "json"], {
      home: home.home,
      env: { CONTAINERS_CONF: path.join(dir, "containers.conf") },
      timeoutMs: 120_000,
      onSpawn: (child) => {
        child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
        // Once it is being prepared (its podman run held: the hook holds it 20 s), with a margin to get there.
        const poll = setInterval(() => {
          if (!runId) return;
          clearInterval(poll);
          setTimeout(() => {
            signalledAt = Date.now();
            child.kill("SIGINT");
          }, 6_000);
        }, 50);
        child.on("close", () => clearInterval(poll));
      },
    });
    if (runId) runIds.add(runId);
    expect(result.code, result.stderr).toBe(130);
    const record = JSON.parse(result.stdout) as RunRecord;
    expect(record.status).toBe("FAILED_CANCELED");
    expect(taskOf(record, "server").status).toBe("FAILED_CANCELED");
    // Ended in its record within seconds of the signal, long before the hook let go.
    expect(Date.parse(record.end_time!) - signalledAt).toBeLessThan(8_000);
    const left = await waitFor(
      () => [...containersOfRun(record.id), ...networksOfRun(record.id)],
      (ids) => ids.length === 0,
      (HOLD_S + 30) * 1000,
      500,
    );
    expect(left).toEqual([]);
  }, 180_000);
});
