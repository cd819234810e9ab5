/**
 * Acceptance: a task that asks for GPUs gets that many of the pool's GPUs,
 * its own (no other running task has them), on the host runtime (as
 * CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES) and in containers (as the
 * GPUs' CDI devices, `--device KIND=INDEX`).
 *
 * These machines have no GPU, so the pool is told it has four (`--gpus 4
 * --gpus-unchecked`: without it, troupe refuses GPUs nvidia-smi does not list),
 * and for containers a CDI spec of four fake GPUs is written to /var/run/cdi
 * (where podman looks for them), under a kind of this test's own
 * (TROUPE_GPU_CDI_KIND; troupe's default is nvidia.com/gpu): each fake device
 * puts a variable TEST_GPU_<index> into the container instead of device
 * nodes. What is mocked is the hardware; podman and its CDI handling are real.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostConfigOf } from "../../src/runtime/container/api-backend.js";
import type { ContainerSpec } from "../../src/runtime/container/backend.js";
import {
  IS_ROOT,
  TARGETS,
  TestHome,
  describeRun,
  ensureBuilt,
  killStartedRuns,
  random,
  runJson,
  taskOf,
  troupe,
  PodmanService,
} from "./helpers.js";

let home: TestHome;
let madeCdiDir = false;
const CDI_DIR = "/var/run/cdi";
const kind = `troupe-test.example/gpu${process.pid}`;
const cdiFile = `${CDI_DIR}/troupe-test-${process.pid}.json`;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  if (!IS_ROOT) return;
  madeCdiDir = !fs.existsSync(CDI_DIR);
  fs.mkdirSync(CDI_DIR, { recursive: true });
  const devices = [0, 1, 2, 3].map((i) => ({ name: String(i), containerEdits: { env: [`TEST_GPU_${i}=present`] } }));
  fs.writeFileSync(cdiFile, JSON.stringify({ cdiVersion: "0.5.0", kind, devices, containerEdits: {} }));
}, 200_000);

afterAll(() => {
  killStartedRuns();
  fs.rmSync(cdiFile, { force: true });
  if (madeCdiDir && fs.readdirSync(CDI_DIR).length === 0) fs.rmdirSync(CDI_DIR);
  home?.remove();
});

/** Three tasks asking for 1, 2 and 1 GPUs and one asking for none, all at once: each says which GPUs it sees. */
function gpuSpec(): string {
  const report = `echo "order=$CUDA_DEVICE_ORDER cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES cdi=$(env | grep '^TEST_GPU_' | cut -d= -f1 | sort | tr '\\n' ' ')"`;
  const task = (name: string, resource?: string) =>
    `  - {name: ${name}, image: alpine:3.18, command: ["sh", "-c", ${JSON.stringify(report)}]${resource ? `, resource: ${resource}` : ""}}`;
  return [
    "workflow:",
    `  name: gpus-${random()}`,
    "  resources:",
    "    one: {cpu: 1, gpu: 1}",
    "    two: {cpu: 1, gpu: 2}",
    "  tasks:",
    task("first", "one"),
    task("pair", "two"),
    task("third", "one"),
    task("none"),
    "",
  ].join("\n");
}

/** The GPU indices a task's report names: CUDA_VISIBLE_DEVICES on the host, the fake CDI devices' variables in containers. */
function seen(log: string, target: string): number[] {
  const cuda = /cuda=(\S*)/.exec(log)?.[1] ?? "";
  const nvidia = /nvidia=(\S*)/.exec(log)?.[1] ?? "";
  const cdi = [...log.matchAll(/TEST_GPU_(\d+)/g)].map((m) => Number(m[1]));
  if (target === "container") {
    // Inside a container the indices are the CDI devices': no host numbering is passed in; a task given none
    // says so to NVIDIA's container hook too ("void").
    expect(cuda).toBe("");
    expect(nvidia).toBe(cdi.length === 0 ? "void" : "");
    return cdi.sort();
  }
  expect(cdi).toEqual([]);
  expect(/order=(\S*)/.exec(log)?.[1]).toBe("PCI_BUS_ID");
  // A task given no GPU sees none ("void": NVIDIA's word for none).
  expect(nvidia).toBe(cuda === "" ? "void" : cuda);
  return cuda === "" ? [] : cuda.split(",").map(Number).sort();
}

describe.each(TARGETS)("GPUs, on %s", (target) => {
  it.skipIf(target === "container" && !IS_ROOT)(
    "each task gets as many GPUs as it asked for, none of them another's; a task that asked for none gets none",
    async () => {
      const file = home.spec(`gpus-${target}`, gpuSpec());
      const run = await runJson(file, {
        home: home.home,
        target,
        extra: ["--gpus", "4", "--gpus-unchecked", "--cpus", "8"],
        env: { TROUPE_GPU_CDI_KIND: kind },
        timeoutMs: 60_000,
      });
      expect(run.code, describeRun(run)).toBe(0);
      const gpus = Object.fromEntries(["first", "pair", "third", "none"].map((t) => [t, seen(home.log(run.record.id, t), target)]));
      expect(gpus.first).toHaveLength(1);
      expect(gpus.pair).toHaveLength(2);
      expect(gpus.third).toHaveLength(1);
      expect(gpus.none).toEqual([]);
      // All four at once (the pool has four GPUs, and CPUs for all): every GPU given once.
      expect([...gpus.first!, ...gpus.pair!, ...gpus.third!].sort()).toEqual([0, 1, 2, 3]);
    },
  );
});

describe("GPUs on a machine whose engine knows no such GPUs", () => {
  it.skipIf(!IS_ROOT)(
    "a GPU task fails to start with podman's reason and what to do about it",
    async () => {
      const file = home.spec("gpus-no-cdi", gpuSpec());
      const missing = `troupe-test.example/absent${process.pid}`;
      const run = await runJson(file, {
        home: home.home,
        target: "container",
        extra: ["--gpus", "4", "--gpus-unchecked", "--cpus", "8"],
        env: { TROUPE_GPU_CDI_KIND: missing },
        timeoutMs: 60_000,
      });
      expect(run.code, describeRun(run)).toBe(1);
      expect(taskOf(run.record, "first").status).toBe("FAILED_START_ERROR");
      expect(taskOf(run.record, "none")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      expect(run.stderr + run.stdout).toContain(`unresolvable CDI devices ${missing}=`);
      expect(run.stderr + run.stdout).toContain(`the engine has no CDI spec for the GPUs: generate one`);
    },
    90_000,
  );
});

describe("GPUs through the Docker Engine API", () => {
  const spec = (gpuDevices?: number[]): ContainerSpec => ({
    name: "c",
    image: "alpine:3.18",
    entrypoint: [],
    command: [],
    env: {},
    hostname: "c",
    labels: {},
    mounts: [],
    network: { name: "n", ip: "10.0.0.2", aliases: [] },
    extraHosts: {},
    hostDir: "/tmp",
    gpuDevices,
  });

  // docker's daemon is not on these machines: the request is checked as docker documents it (`docker run --gpus '"device=1,3"'`).
  it("asks docker for exactly the task's GPUs, by index, and for none when it has none", () => {
    expect(hostConfigOf(spec([1, 3])).DeviceRequests).toEqual([{ Driver: "nvidia", DeviceIDs: ["1", "3"], Capabilities: [["gpu"]] }]);
    expect(hostConfigOf(spec([])).DeviceRequests).toBeUndefined();
    expect(hostConfigOf(spec()).DeviceRequests).toBeUndefined();
  });

  let service: PodmanService | undefined;
  afterAll(() => service?.stop());

  it.skipIf(!IS_ROOT)(
    "through podman's compatible API (which would ignore the request) a GPU task fails to start, saying why; the others run",
    async () => {
      service = await PodmanService.start();
      const file = home.spec("gpus-api", gpuSpec());
      const run = await runJson(file, {
        home: home.home,
        target: "container",
        extra: ["--engine", "docker", "--gpus", "4", "--gpus-unchecked", "--cpus", "8"],
        env: { DOCKER_HOST: service.url },
        timeoutMs: 60_000,
      });
      expect(run.code, describeRun(run)).toBe(1);
      expect(taskOf(run.record, "none")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      for (const task of ["first", "pair", "third"]) expect(taskOf(run.record, task).status).toBe("FAILED_START_ERROR");
      expect(run.stderr + run.stdout).toMatch(/GPUs cannot be given through podman's Docker-compatible API; use podman's CLI/);
    },
    90_000,
  );
});

describe("a pool cannot give out GPUs the machine does not have", () => {
  /** A directory with an nvidia-smi that lists `count` GPUs (or fails), first on PATH. */
  function fakeNvidiaSmi(count: number | "fails"): Record<string, string> {
    const dir = home.outsideTmp();
    const lines = Array.from({ length: count === "fails" ? 0 : count }, (_, i) => `echo "GPU ${i}: Fake GPU (UUID: GPU-${i})"`);
    const body = count === "fails" ? "echo 'NVIDIA-SMI has failed' >&2; exit 9" : lines.join("\n");
    fs.writeFileSync(path.join(dir, "nvidia-smi"), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return { PATH: `${dir}:${process.env.PATH ?? ""}` };
  }
  const plain = () =>
    home.spec("gpus-plain", `workflow:\n  name: plain-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`);

  it("troupe run --gpus N above what nvidia-smi lists: exit 2, saying so and how to insist", async () => {
    for (const [count, listed] of [
      [2, "nvidia-smi -L lists 2"],
      ["fails", "nvidia-smi -L lists 0"],
    ] as const) {
      const run = await troupe(["run", plain(), "--runtime", "host", "--gpus", "3"], { home: home.home, env: fakeNvidiaSmi(count) });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`--gpus 3: this machine has ${count === 2 ? "2 GPUs" : "0 GPUs"} (${listed})`);
      expect(run.stderr).toContain("cannot give out GPUs it does not have");
      expect(run.stderr).toContain("--gpus-unchecked");
    }
    const within = await troupe(["run", plain(), "--runtime", "host", "--gpus", "2"], { home: home.home, env: fakeNvidiaSmi(2) });
    expect(within.code, within.stderr).toBe(0);
    const insisted = await troupe(["run", plain(), "--runtime", "host", "--gpus", "3", "--gpus-unchecked"], {
      home: home.home,
      env: fakeNvidiaSmi("fails"),
    });
    expect(insisted.code, insisted.stderr).toBe(0);
  }, 60_000);

  it("a server pool with more GPUs than the machine has is refused at start, unless gpus_unchecked", async () => {
    const serverHome = home.outsideTmp();
    const config = path.join(serverHome, "pools.yaml");
    fs.writeFileSync(config, "pools:\n- name: big\n  runtime: host\n  gpus: 2\n");
    const refused = await troupe(["server", "--home", serverHome, "--port", "0", "--config", config], {
      home: home.home,
      env: fakeNvidiaSmi(1),
      timeoutMs: 30_000,
    });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain("pool big: gpus 2: this machine has 1 GPU (nvidia-smi -L lists 1)");
    expect(refused.stderr).toContain("gpus_unchecked: true");
    fs.writeFileSync(config, "pools:\n- name: big\n  runtime: host\n  gpus: 2\n  gpus_unchecked: true\n");
    // It serves: once it says it listens, the test stops it (SIGTERM); not refused.
    const started = await troupe(["server", "--home", serverHome, "--port", "0", "--config", config], {
      home: home.home,
      env: fakeNvidiaSmi(1),
      timeoutMs: 30_000,
      onSpawn: (child) => {
        let out = "";
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          if (/listening on/.test(out)) child.kill("SIGTERM");
        });
      },
    });
    expect(started.timedOut, started.stderr).toBe(false);
    expect(started.stdout).toMatch(/listening on/);
    expect(started.stderr).not.toContain("GPUs it does not have");
  }, 60_000);
});
