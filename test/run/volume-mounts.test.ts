/**
 * `volumeMounts` with real runs: a host directory the pool allows is shown to
 * the task at its DEST, read-write (the host's sandbox and podman's
 * containers alike); one it does not allow refuses the workflow before
 * anything runs, saying how to allow it.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../server/helpers.js";
import { describeRun, ensureBuilt, runJson, TestHome, troupe, type RunTarget } from "./helpers.js";

let home: TestHome;
let shared: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  // Outside /tmp (a sandbox's /tmp is its own) and writable by the task's user (nobody, on the host).
  shared = mkdtempSync("/var/tmp/troupe-volume-");
  chmodSync(shared, 0o777);
  writeFileSync(join(shared, "dataset.txt"), "rows\n");
}, 200_000);

afterAll(() => {
  home?.remove();
  rmSync(shared, { recursive: true, force: true });
});

const spec = (name: string) =>
  home.spec(
    name,
    `workflow:
  name: ${name}
  tasks:
  - name: reader
    image: alpine:3.18
    command: [sh, -c, "cat /mnt/shared/dataset.txt && echo written > /mnt/shared/result-${name}.txt"]
    volumeMounts: ["${shared}:/mnt/shared"]
`,
  );

const TARGETS: RunTarget[] = process.env.CONTAINERS_CONF ? ["netns", "container"] : ["netns"];

describe("volumeMounts", () => {
  it.each(TARGETS)("shows the task an allowed host directory at its DEST, read-write (%s)", async (target) => {
    const name = `mounted-${target}`;
    const run = await runJson(spec(name), { home: home.home, target, extra: ["--allow-mount", shared] });
    expect(run.code, describeRun(run)).toBe(0);
    expect(home.log(run.record.id, "reader")).toBe("rows\n");
    expect(readFileSync(join(shared, `result-${name}.txt`), "utf8")).toBe("written\n");
  });

  it("refuses a workflow whose mount the pool does not allow (a sibling path is not under it), before anything runs", async () => {
    const result = await troupe(["run", spec("refused"), "--runtime", "host", "--allow-mount", `${shared}-other`], {
      home: home.home,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `error E_NOT_ALLOWED: task reader asks for the volume mount ${shared}:/mnt/shared, whose host path the pool of troupe run does not allow (it allows ${shared}-other; an administrator may allow it: allowed_mounts in the pool's config, --allow-mount ${shared} for troupe run)`,
    );
    const relative = await troupe(["run", spec("relative"), "--allow-mount", "data"], { home: home.home });
    expect(relative.code).toBe(2);
    expect(relative.stderr).toContain("--allow-mount data: not an absolute path");
  });

  it("a server pool's default_mounts reach every task, and its allowed_mounts decide what a submission may ask (403 otherwise)", async () => {
    const serverHome = home.outsideTmp();
    const config = join(serverHome, "pools.yaml");
    writeFileSync(
      config,
      `pools:\n- name: default\n  runtime: host\n  isolation: none\n  default_mounts: ["${shared}:/var/tmp/defaults"]\n  allowed_mounts: ["${shared}"]\n`,
    );
    const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
    expect(created.code, created.stderr).toBe(0);
    const server = await startServer(serverHome, ["--config", config]);
    try {
      const env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: created.stdout.trim(), XDG_CONFIG_HOME: home.outsideTmp() };
      const both = home.spec(
        "defaults",
        `workflow:\n  name: defaults\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: [sh, -c, "cat /var/tmp/defaults/dataset.txt /mnt/own/dataset.txt"]\n    volumeMounts: ["${shared}:/mnt/own"]\n`,
      );
      const submitted = await troupe(["workflow", "submit", both, "--wait"], { home: home.home, env, timeoutMs: 60_000 });
      expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
      expect(submitted.stdout).toContain("t    | rows\nt    | rows\n");
      const other = home.spec(
        "other",
        `workflow:\n  name: other\n  tasks:\n  - name: t\n    image: alpine:3.18\n    command: ["true"]\n    volumeMounts: ["/etc:/mnt/etc"]\n`,
      );
      const refused = await troupe(["workflow", "submit", other], { home: home.home, env, timeoutMs: 60_000 });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("task t asks for the volume mount /etc:/mnt/etc, whose host path the pool default does not allow");
    } finally {
      await server.stop();
    }
  });
});
