/**
 * A server's container pool asks its engine once, not at every run: with a
 * `podman` on PATH that logs each call before it runs the real one, three
 * workflows run on the pool and `podman version` was called once, and so
 * was the check that it can start containers (one `podman run` on a bare
 * root file system, `--rootfs`).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let server: StartedServer | undefined;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(async () => {
  await server?.stop();
  home?.remove();
});

it("a container pool's engine is asked once for all its runs", async () => {
  const realPodman = execFileSync("sh", ["-c", "command -v podman"], { encoding: "utf8" }).trim();
  const bin = home.outsideTmp();
  const calls = path.join(bin, "calls.log");
  fs.writeFileSync(path.join(bin, "podman"), `#!/bin/sh\necho "$*" >> ${calls}\nexec ${realPodman} "$@"\n`, { mode: 0o755 });
  const serverHome = home.outsideTmp();
  const token = (await troupe(["server", "token", "create", "dana", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--runtime", "container"], { PATH: `${bin}:${process.env.PATH}` });
  const env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() };
  for (let i = 0; i < 3; i++) {
    const file = home.spec(
      `engine-${i}`,
      `workflow:\n  name: engine-${random()}\n  tasks:\n  - {name: t, image: "alpine:3.18", command: ["true"]}\n`,
    );
    const run = await troupe(["workflow", "submit", file, "--wait", "--output", "json"], { home: home.home, env, timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).status).toBe("COMPLETED");
  }
  const commands = fs.readFileSync(calls, "utf8").split("\n").filter(Boolean);
  const runs = commands.filter((c) => c.startsWith("run "));
  expect(runs.filter((c) => !c.includes(" --rootfs "))).toHaveLength(3);
  expect(runs.filter((c) => c.includes(" --rootfs "))).toHaveLength(1);
  expect(commands.filter((c) => c.startsWith("version "))).toHaveLength(1);
}, 120_000);
