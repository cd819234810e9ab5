/**
 * REGISTRY credentials authorise image pulls (issue 15), through the built
 * CLI with real podman. No registry that serves images can run here (none
 * can be pulled), so the registry is a stand-in on loopback, said so: it asks
 * for HTTP Basic auth as a registry does (401 with a challenge on /v2/), notes
 * the logins it is sent, and has no image (404 once authorised), so every
 * pull fails FAILED_IMAGE_PULL after its login was seen. Shown: the login is
 * the credential's (username and auth) for the image's registry, through
 * podman's CLI (an authfile) and the Docker Engine API (podman's service, the
 * X-Registry-Auth header); the secret is on no process's command line while
 * it pulls, in no file left behind, nor in the record; and on a server, a
 * run's pull uses its owner's credential, another user's none.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type StartedServer } from "../server/helpers.js";
import { ensureBuilt, PodmanService, random, TestHome, troupe } from "./helpers.js";
import { LoginRecorder } from "./registry-recorder.js";

const SECRET = `registry-secret-${random(8)}`;
const USER = "robot$ci";
const CONTAINERS = process.env.CONTAINERS_CONF !== undefined;

/** Polls every process's command line while `running` lasts: those that showed `secret`. */
async function commandLinesWith<T>(secret: string, running: Promise<T>): Promise<{ result: T; seen: string[] }> {
  const seen = new Set<string>();
  let done = false;
  void running.finally(() => (done = true));
  while (!done) {
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const line = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ");
        if (line.includes(secret)) seen.add(line);
      } catch {
        // Gone meanwhile.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { result: await running, seen: [...seen] };
}

const pullDirs = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("troupe-pull-"));

describe.skipIf(!CONTAINERS)("registry credentials authorise image pulls (a stand-in registry on loopback)", () => {
  const registry = new LoginRecorder();
  let home: TestHome;
  let service: PodmanService | undefined;
  let registriesConf: string;
  const env = () => ({ CONTAINERS_REGISTRIES_CONF: registriesConf });
  const previousConf = process.env.CONTAINERS_REGISTRIES_CONF;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    await registry.start();
    registry.logins.add(`${USER}:${SECRET}`);
    // Plain HTTP on loopback: podman is told this registry is insecure (as for any registry without TLS).
    registriesConf = path.join(home.home, "registries.conf");
    fs.writeFileSync(registriesConf, `[[registry]]\nlocation = "${registry.address}"\ninsecure = true\n`);
    const set = await troupe(
      [
        "credential",
        "set",
        "reg",
        "--type",
        "registry",
        "--payload",
        `registry=${registry.address}/team`,
        `username=${USER}`,
        `auth=${SECRET}`,
      ],
      { home: home.home },
    );
    expect(set.code, set.stderr).toBe(0);
    // The API service inherits this process's environment.
    process.env.CONTAINERS_REGISTRIES_CONF = registriesConf;
    service = await PodmanService.start();
  }, 200_000);

  afterAll(async () => {
    await service?.stop();
    if (previousConf === undefined) delete process.env.CONTAINERS_REGISTRIES_CONF;
    else process.env.CONTAINERS_REGISTRIES_CONF = previousConf;
    await registry.close();
    home?.remove();
  });

  const spec = (name: string, image: string) =>
    home.spec(name, `workflow:\n  name: ${name}\n  tasks:\n  - {name: t, image: "${image}", command: [echo, hi]}\n`);

  it.each([
    ["podman's CLI (an authfile)", ["--engine", "podman"]],
    ["the Docker Engine API (X-Registry-Auth)", ["--engine", "docker"]],
  ] as const)("through %s: the credential's login for its registry, on no command line, in no file left", async (_what, flags) => {
    const repo = `team/${random()}`;
    const before = pullDirs();
    const running = troupe(
      ["run", spec("pull", `${registry.address}/${repo}:1`), "--runtime", "container", "--pull", "always", ...flags, "--output", "json"],
      {
        home: home.home,
        env: { ...env(), ...(flags[1] === "docker" ? { DOCKER_HOST: service!.url } : {}) },
        timeoutMs: 120_000,
      },
    );
    const { result, seen } = await commandLinesWith(SECRET, running);
    expect(seen).toEqual([]);
    const record = JSON.parse(result.stdout) as { groups: Array<{ tasks: Array<{ status: string; reason: string }> }> };
    const task = record.groups[0]!.tasks[0]!;
    expect(task.status, result.stderr).toBe("FAILED_IMAGE_PULL");
    expect(registry.loginsFor(repo)).toContain(`${USER}:${SECRET}`);
    expect(JSON.stringify(record)).not.toContain(SECRET);
    expect(pullDirs()).toEqual(before);
  });

  it("an image outside the credential's scope is pulled with no login", async () => {
    const repo = `other/${random()}`;
    const result = await troupe(
      ["run", spec("anon", `${registry.address}/${repo}:1`), "--runtime", "container", "--engine", "podman", "--pull", "always"],
      {
        home: home.home,
        env: env(),
        timeoutMs: 120_000,
      },
    );
    expect(result.code).toBe(1);
    expect(registry.requestsFor(repo)).toBeGreaterThan(0);
    expect(registry.loginsFor(repo)).toEqual([]);
  });

  describe("on a server", () => {
    let server: StartedServer | undefined;
    const tokens: Record<string, string> = {};
    afterAll(async () => server?.stop());

    it("a run's pull uses its owner's registry credential; another user's run, without one, none", async () => {
      const serverHome = home.outsideTmp();
      for (const user of ["alice", "bob"])
        tokens[user] = (await troupe(["server", "token", "create", user, "--home", serverHome], { home: home.home })).stdout.trim();
      server = await startServer(serverHome, ["--runtime", "container"], { ...env() });
      const as = (user: string, args: string[]) =>
        troupe(args, {
          home: path.join(home.home, `client-${user}`),
          env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: tokens[user], XDG_CONFIG_HOME: path.join(home.home, "xdg") },
          timeoutMs: 120_000,
        });
      const set = await as("alice", [
        "credential",
        "set",
        "reg",
        "--type",
        "registry",
        "--payload",
        `registry=${registry.address}`,
        `username=${USER}`,
        `auth=${SECRET}`,
      ]);
      expect(set.code, set.stderr).toBe(0);
      for (const user of ["alice", "bob"]) {
        const repo = `team/${user}-${random()}`;
        const submitted = await as(user, ["workflow", "submit", spec(`srv-${user}`, `${registry.address}/${repo}:1`), "--wait"]);
        expect(submitted.code, submitted.stdout + submitted.stderr).toBe(1);
        expect(submitted.stdout).toContain("FAILED_IMAGE_PULL");
        expect(registry.requestsFor(repo)).toBeGreaterThan(0);
        expect(registry.loginsFor(repo)).toEqual(user === "alice" ? expect.arrayContaining([`${USER}:${SECRET}`]) : []);
      }
      expect(fs.readFileSync(path.join(serverHome, "server.log"), "utf8")).not.toContain(SECRET);
    });
  });
});
