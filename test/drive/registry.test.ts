/**
 * The runtime registry: a request (flags of `troupe run`, a server pool's
 * fields) settles on one kind, or is refused with what is wrong and where;
 * a server's config file is checked against the kinds the registry knows.
 * Real zod, real config files; the host runtime is chosen for real.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLAG_NAMING } from "../../src/cli/choose-runtime.js";
import { openPool, POOL_FIELDS, readServerConfig } from "../../src/cli/server-config.js";
import { RUNTIME_KINDS, requestRuntime, resolveRequest, type RuntimeRequest } from "../../src/drive/index.js";
import { ensureBuilt, ROOT, TestHome, troupe } from "../run/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "troupe-registry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flags = (kind: string | undefined, options: Record<string, unknown>, fallback?: string): RuntimeRequest => ({
  kind,
  options,
  naming: FLAG_NAMING,
  fallback: fallback === undefined ? undefined : { kind: fallback, where: `TROUPE_RUNTIME=${fallback}` },
});

function config(text: string): string {
  const path = join(dir, `pools-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe("a request for a runtime", () => {
  it("names the kind asked for, or the one its options imply, or the default, else every automatic kind in order", () => {
    expect(resolveRequest(flags("container", {})).kind?.name).toBe("container");
    expect(resolveRequest(flags(undefined, { isolation: "none" })).kind?.name).toBe("host");
    expect(resolveRequest(flags(undefined, { pull: "never" }, "host")).kind?.name).toBe("container");
    expect(resolveRequest(flags(undefined, {}, "host")).kind?.name).toBe("host");
    expect(resolveRequest(flags(undefined, { partition: "main", qos: "high" })).kind?.name).toBe("slurm");
    expect(resolveRequest(flags(undefined, { namespace: "team-a", context: "prod" })).kind?.name).toBe("kubernetes");
    expect(resolveRequest(flags(undefined, { task_user: "1000" })).candidates.map((k) => k.name)).toEqual(["container", "host"]);
  });

  it.each([
    ["an option of another runtime", flags("host", { engine: "podman", pull: "never" }), "--runtime host does not take --engine or --pull"],
    [
      "an option the implied runtime does not take",
      flags(undefined, { pull: "never", task_user: "1000" }),
      "--pull means the container runtime, which does not take --task-user",
    ],
    [
      "options implying two runtimes",
      flags(undefined, { isolation: "none", engine: "docker" }),
      "--isolation is an option of the host runtime and --engine of the container runtime: say which, --runtime host or --runtime container",
    ],
    [
      "an unknown default",
      flags(undefined, {}, "nomad"),
      "TROUPE_RUNTIME=nomad: no runtime named nomad; the runtimes: container, host, kubernetes, slurm",
    ],
    ["a misspelt kind", flags("hots", {}), "--runtime hots: no runtime named hots (did you mean `host`?)"],
    ["a Slurm option to the host", flags("host", { partition: "main" }), "--runtime host does not take --partition"],
    ["a Slurm spread it does not know", flags("slurm", { spread: "wide" }), "--spread wide: "],
    ["a value its kind refuses", flags(undefined, { task_user: "0" }), "--task-user 0: tasks never run as root by default"],
    ["a value of the wrong type", flags("container", { pull: 3 }), "--pull 3: "],
    ["a namespace that is no DNS label", flags("kubernetes", { namespace: "Team_A" }), "--namespace Team_A: a namespace name"],
    ["a pod annotation without its value", flags("kubernetes", { pod_annotations: ["troupe.test/exit-code"] }), "KEY=VALUE"],
    ["a Kubernetes option to Slurm", flags("slurm", { namespace: "a" }), "--runtime slurm does not take --namespace"],
    ["a gang scheduler it does not know", flags("kubernetes", { gang_scheduler: "yunikorn" }), "--gang-scheduler yunikorn: "],
    ["a barrier holder it does not know", flags("kubernetes", { barrier_holder: "bash" }), "--barrier-holder bash: "],
    ["a barrier holder to Slurm", flags("slurm", { barrier_holder: "shell" }), "--runtime slurm does not take --barrier-holder"],
  ])("refuses %s, saying where (a usage error)", (_what, request, message) => {
    expect(() => resolveRequest(request)).toThrow(expect.objectContaining({ kind: "usage", message: expect.stringContaining(message) }));
  });

  it("the host runtime, asked for, is a pool backend that says what it is and can do", async () => {
    const chosen = await requestRuntime(flags("host", { isolation: "none" }), { home: dir }).settle({
      images: new Set(["alpine:3.18"]),
      longLived: false,
    });
    expect(chosen.note).toBeUndefined();
    expect(chosen.backend.kind).toBe("host");
    expect(chosen.backend.describe()).toMatch(/^runtime: host, isolation: none/);
    expect(chosen.backend.notices().join("\n")).toContain("stands in for the images alpine:3.18");
    expect(chosen.backend.capabilities).toMatchObject({ placement: "engine", sharedFileSystem: true, localLogs: true });
  });

  it("every kind's options are words of a pool's config with one meaning each (kinds that share one share its schema), none a field of the pool itself", () => {
    const fields = RUNTIME_KINDS.flatMap((kind) => Object.entries(kind.options.shape));
    for (const [field, schema] of fields) {
      expect(fields.filter(([other]) => other === field).every(([, same]) => same === schema)).toBe(true);
      expect(POOL_FIELDS).toContain(field);
    }
    // task_user is the one shared: who a host sandbox's command runs as, on this machine or a Slurm node.
    expect(RUNTIME_KINDS.filter((kind) => "task_user" in kind.options.shape).map((kind) => kind.name)).toEqual(["host", "slurm"]);
  });
});

describe("a server's config file", () => {
  it("an unknown runtime is refused naming the pool and the runtimes there are", () => {
    const path = config("pools:\n- name: cpu\n- name: gpu-box\n  runtime: nomad\n");
    expect(() => readServerConfig(path)).toThrow(
      `--config ${path}: pools.1.runtime: pool gpu-box: no runtime named nomad; the runtimes: container, host, kubernetes, slurm`,
    );
  });

  it.each([
    ["engine: 5", "pools.0.engine: Invalid option"],
    ["isolation: full", "pools.0.isolation: Invalid option"],
    ["pull: [always]", "pools.0.pull: Invalid option"],
    ["task_user: 7", "pools.0.task_user: Invalid input: expected string"],
    ['task_user: "0"', "pools.0.task_user: tasks never run as root by default"],
  ])("a runtime option of the wrong type or value (%s) is refused naming the field", (line, message) => {
    const path = config(`pools:\n- name: p\n  ${line}\n`);
    expect(() => readServerConfig(path)).toThrow(`--config ${path}: ${message}`);
  });

  it("an option of another runtime than the pool's is refused naming the pool and the option", () => {
    const path = config("pools:\n- name: p\n  runtime: host\n  engine: podman\n");
    expect(() => readServerConfig(path)).toThrow(`--config ${path}: pools.0: pool p: runtime host does not take engine`);
  });

  it("a pool's start_timeout is a duration (0: no limit) that reaches its runs' engine; anything else is refused naming the field", async () => {
    for (const [value, ms] of [
      ["10m", 600_000],
      ["90s", 90_000],
      ["0", 0],
      ["45", 45_000],
    ] as const) {
      const [pool] = readServerConfig(config(`pools:\n- name: p\n  runtime: host\n  start_timeout: ${value}\n`));
      expect((await openPool(pool!, dir)).pool.startTimeoutMs, value).toBe(ms);
    }
    const [unset] = readServerConfig(config("pools:\n- name: p\n  runtime: host\n"));
    expect((await openPool(unset!, dir)).pool.startTimeoutMs).toBeUndefined();
    const path = config("pools:\n- name: p\n  runtime: host\n  start_timeout: 1.5h\n");
    expect(() => readServerConfig(path)).toThrow(`--config ${path}: pools.0.start_timeout: a duration such as 10m or 90s (0: no limit)`);
  });

  it("a pool's runtime options reach its runtime (podman, pull: never: an image not here is not pulled)", async () => {
    const path = config("pools:\n- name: p\n  runtime: container\n  engine: podman\n  pull: never\n");
    const [pool] = readServerConfig(path);
    expect(pool).toMatchObject({ runtime: "container", engine: "podman", pull: "never" });
    // podman on these machines needs its configuration (npm test sets it; so do the other podman tests when it is not).
    process.env.CONTAINERS_CONF ??= join(ROOT, "scripts", "ci-containers.conf");
    const { pool: opened, note } = await openPool(pool!, dir);
    expect(note).toBeUndefined();
    expect(opened.backend.describe()).toMatch(/^runtime: container, engine: podman/);
    const session = await opened.backend.openSession({ runId: "pull-never", dataDir: join(dir, "runs", "pull-never") });
    try {
      await expect(session.ensureImage!("troupe-test/not-here:1")).rejects.toThrow(/not present locally and --pull is never/);
    } finally {
      await session.close();
    }
  }, 60_000);
});

describe("troupe run's flags", () => {
  let home: TestHome;
  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
  }, 200_000);
  afterAll(() => home?.remove());

  it("`troupe run --help` has a flag for every option of every runtime, and names every runtime", async () => {
    const help = (await troupe(["run", "--help"], { home: home.home })).stdout;
    for (const kind of RUNTIME_KINDS) {
      expect(help).toContain(`"${kind.name}"`);
      // A flag with a value (`--partition <name>`), or a switch (`--batch-jobs`).
      for (const field of Object.keys(kind.options.shape))
        expect(help, field).toMatch(new RegExp(`--${field.replaceAll("_", "-")}( <|\\s)`));
    }
  });

  it("an option of another runtime is refused before the workflow is read: exit 2, naming the flags", async () => {
    const result = await troupe(["run", "no-such-file.yaml", "--runtime", "host", "--pull", "never"], { home: home.home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--runtime host does not take --pull");
  });
});
