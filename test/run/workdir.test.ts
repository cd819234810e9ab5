/**
 * Acceptance: where a task's command starts, per runtime, and mounts whose
 * paths hold `:` and `,`.
 *
 * OSMO sets no workingDir on its pods: a command starts where its image says
 * (its WORKDIR, else `/`), and OSMO's own test/workflow/parallel_workflow_v2.yaml
 * writes `tmp/tcp_echo.txt` relative to it. troupe's containers start there
 * too (podman's CLI and the Docker API); the host runtime's sandboxes, which
 * stand in for images, and its plain processes start in `/`.
 *
 * Needs the images of scripts/test-images.sh and CONTAINERS_CONF (scripts/test.sh exports both).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { onPath } from "../../src/util/executables.js";
import {
  IS_ROOT,
  PodmanService,
  SANDBOX_BUILDERS,
  TestHome,
  describeRun,
  ensureBuilt,
  killStartedRuns,
  random,
  removeRunLeftovers,
  runJson,
  troupe,
  type RunRecord,
} from "./helpers.js";

const BUSYBOX = "localhost/troupe-test/busybox:latest";
let home: TestHome;
/** A busybox image whose WORKDIR is /srv/work, made from the test image in beforeAll. */
const WORKDIR_IMAGE = `localhost/troupe-test/workdir-${random()}:1`;
const runIds = new Set<string>();
const dirs: string[] = [];
let service: PodmanService | undefined;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const context = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-workdir-image-"));
  dirs.push(context);
  fs.writeFileSync(path.join(context, "Containerfile"), `FROM ${BUSYBOX}\nWORKDIR /srv/work\n`);
  execFileSync("podman", ["build", "--pull=never", "--quiet", "-t", WORKDIR_IMAGE, context], { stdio: "pipe", timeout: 120_000 });
}, 200_000);

afterEach(() => {
  killStartedRuns();
  for (const id of runIds) removeRunLeftovers(id);
  runIds.clear();
});

afterAll(async () => {
  await service?.stop();
  execFileSync("podman", ["rmi", "--force", WORKDIR_IMAGE], { stdio: "ignore" });
  home?.remove();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Where a task starts, and that `tmp/rel.txt` relative to it is /tmp/rel.txt: its output dir gets both answers. */
const WHERE_AND_TMP = "pwd > {{output}}/pwd.txt; echo relative > tmp/rel.txt && cat /tmp/rel.txt > {{output}}/tmp.txt";
/** Where a task starts, and that a file written relative to it is there. */
const WHERE_AND_HERE = "pwd > {{output}}/pwd.txt; echo here > here.txt && cat $(pwd)/here.txt > {{output}}/here.txt";

function probeSpec(h: { spec(name: string, text: string): string }, image: string, name = "where", script = WHERE_AND_TMP): string {
  return h.spec(name, `workflow:\n  name: ${name}\n  tasks:\n  - name: t\n    image: ${image}\n    command: [sh, -c, '${script}']\n`);
}

function outputsOf(homeDir: string, runId: string, task: string): Record<string, string> {
  const dir = path.join(homeDir, "runs", runId, "outputs", task, "0");
  return Object.fromEntries(fs.readdirSync(dir).map((name) => [name, fs.readFileSync(path.join(dir, name), "utf8")]));
}

async function run(file: string, homeDir: string, args: string[], env: Record<string, string | undefined> = {}) {
  const result = await runJson(file, { home: homeDir, extra: args, env, timeoutMs: 90_000 });
  runIds.add(result.record.id);
  return result;
}

const CONTAINER = ["--runtime", "container"];

describe("a container task starts where its image says (OSMO sets no workingDir)", () => {
  it("podman's CLI: in / for an image without WORKDIR; `tmp/...` is the container's /tmp; nothing lands in the output", async () => {
    const result = await run(probeSpec(home, BUSYBOX), home.home, CONTAINER);
    expect(result.code, describeRun(result)).toBe(0);
    expect(outputsOf(home.home, result.record.id, "t")).toEqual({ "pwd.txt": "/\n", "tmp.txt": "relative\n" });
  }, 90_000);

  it("podman's CLI: in the image's WORKDIR where it has one", async () => {
    const result = await run(probeSpec(home, WORKDIR_IMAGE, "workdir", WHERE_AND_HERE), home.home, CONTAINER);
    expect(result.code, describeRun(result)).toBe(0);
    expect(outputsOf(home.home, result.record.id, "t")).toEqual({ "pwd.txt": "/srv/work\n", "here.txt": "here\n" });
  }, 90_000);

  it("the Docker API (podman's service): in / and in the image's WORKDIR alike", async () => {
    service = await PodmanService.start();
    const api = [...CONTAINER, "--engine", "docker"];
    const env = { DOCKER_HOST: service.url };
    const plain = await run(probeSpec(home, BUSYBOX), home.home, api, env);
    expect(plain.code, describeRun(plain)).toBe(0);
    expect(outputsOf(home.home, plain.record.id, "t")).toEqual({ "pwd.txt": "/\n", "tmp.txt": "relative\n" });
    const workdir = await run(probeSpec(home, WORKDIR_IMAGE, "workdir", WHERE_AND_HERE), home.home, api, env);
    expect(workdir.code, describeRun(workdir)).toBe(0);
    expect(outputsOf(home.home, workdir.record.id, "t")).toEqual({ "pwd.txt": "/srv/work\n", "here.txt": "here\n" });
  }, 120_000);

  it("a group in the manner of OSMO's own tests (a server, a client that waits for its name, then writes tmp/ relative to /) completes", async () => {
    // Written for troupe after OSMO's test/workflow/parallel_workflow_v2.yaml (not a copy): its client writes
    // tmp/echo.txt relative to where its image starts it, which is / for busybox, as OSMO runs it.
    const file = home.spec(
      "server-client",
      `workflow:
  name: server-client-${random()}
  groups:
  - name: echo
    tasks:
    - name: server
      lead: true
      image: ${BUSYBOX}
      command: [/bin/sh, /tmp/serve.sh]
      files:
      - path: /tmp/serve.sh
        contents: |
          printf 'hello' > /tmp/greeting
          nc -w 30 -l -p 24831 < /tmp/greeting
          sleep 3 # the client keeps what it was told before the group ends with its lead
    - name: client
      image: ${BUSYBOX}
      command: [/bin/sh, /tmp/ask.sh]
      files:
      - path: /tmp/ask.sh
        contents: |
          tries=30
          until nslookup {{host:server}} > /dev/null; do tries=$((tries - 1)); [ $tries -gt 0 ] || exit 1; sleep 1; done
          tries=20
          until nc -w 10 {{host:server}} 24831 > tmp/echo.txt && [ -s tmp/echo.txt ]; do tries=$((tries - 1)); [ $tries -gt 0 ] || exit 2; sleep 1; done
          cp tmp/echo.txt {{output}}/echo.txt
          sleep 600
`,
    );
    const result = await run(file, home.home, CONTAINER);
    expect(result.code, describeRun(result)).toBe(0);
    expect(outputsOf(home.home, result.record.id, "client")).toEqual({ "echo.txt": "hello" });
  }, 90_000);
});

describe("a host task starts in / (as most images do), whichever tool builds its sandbox", () => {
  const builders = SANDBOX_BUILDERS.filter((b) => onPath("bwrap") || b.env.TROUPE_SANDBOX !== "bwrap");
  it.each(builders)(
    "$name: pwd is /, `tmp/...` is its private /tmp, a relative write elsewhere meets the read-only root",
    async (builder) => {
      const file = probeSpec(home, BUSYBOX);
      const result = await run(file, home.home, ["--runtime", "host"], builder.env);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.stderr).toMatch(builder.firstLine);
      expect(outputsOf(home.home, result.record.id, "t")).toEqual({ "pwd.txt": "/\n", "tmp.txt": "relative\n" });
      const stray = home.spec(
        "stray",
        "workflow:\n  name: stray\n  tasks:\n  - name: s\n    image: alpine\n    command: [sh, -c, 'echo x > stray.txt']\n",
      );
      const refused = await troupe(["run", stray, "--runtime", "host"], { home: home.home, env: builder.env });
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(/s +\| .*stray\.txt: Read-only file system/);
      expect(fs.existsSync("/stray.txt")).toBe(false);
    },
    60_000,
  );

  it("plain processes (no bubblewrap, an unprivileged user) start in / too", async () => {
    const bin = home.outsideTmp();
    for (const tool of ["sh", "cat", "pwd"])
      fs.symlinkSync(
        execFileSync("sh", ["-c", `command -v ${tool} || echo /bin/${tool}`], { encoding: "utf8" }).trim(),
        path.join(bin, tool),
      );
    const own = home.outsideTmp();
    if (IS_ROOT) fs.chownSync(own, 65534, 65534);
    const file = path.join(own, "plain.yaml");
    fs.copyFileSync(probeSpec(home, "alpine", "plain"), file);
    const ownHome = path.join(own, "home");
    const result = await troupe(["run", file, "--output", "json"], {
      home: ownHome,
      env: { PATH: bin, TROUPE_SANDBOX: "bwrap" },
      asUser: IS_ROOT ? 65534 : undefined,
    });
    const record = JSON.parse(result.stdout) as RunRecord;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(outputsOf(ownHome, record.id, "t")).toEqual({ "pwd.txt": "/\n", "tmp.txt": "relative\n" });
  }, 60_000);
});

describe("a TROUPE_HOME whose path holds `:` and `,`", () => {
  /** Outputs, an input from upstream and files: all mounted from under the home. */
  const chainSpec = (h: TestHome) =>
    h.spec(
      "chain",
      [
        "workflow:",
        "  name: chain",
        "  tasks:",
        "  - name: make",
        `    image: ${BUSYBOX}`,
        // The paths as arguments, not in the script: the shell would split them at spaces.
        "    command: [sh, -c, 'cat /tmp/in.txt > \"$0/made.txt\"', '{{output}}']",
        "    files: [{path: /tmp/in.txt, contents: from-files}]",
        "  - name: use",
        `    image: ${BUSYBOX}`,
        "    inputs: [{task: make}]",
        "    command: [sh, -c, 'cat \"$0/made.txt\" > \"$1/used.txt\"', '{{input:0}}', '{{output}}']",
        "",
      ].join("\n"),
    );

  /** A fresh TROUPE_HOME whose path holds `odd`. */
  const oddHome = (odd: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `troupe-${odd}-`));
    dirs.push(dir);
    return path.join(dir, `home${odd}1`);
  };

  it("podman's CLI mounts outputs, inputs and files: from it (--mount, quoted), even with `\"` and spaces", async () => {
    const h = oddHome(':b,c" d');
    const result = await run(chainSpec(home), h, CONTAINER);
    expect(result.code, describeRun(result)).toBe(0);
    expect(outputsOf(h, result.record.id, "use")).toEqual({ "used.txt": "from-files" });
  }, 90_000);

  it("the host runtime runs them from it too, whichever tool builds its sandboxes", async () => {
    const h = oddHome(':b,c" d');
    for (const builder of SANDBOX_BUILDERS.filter((b) => onPath("bwrap") || b.env.TROUPE_SANDBOX !== "bwrap")) {
      const result = await run(chainSpec(home), h, ["--runtime", "host"], builder.env);
      expect(result.code, describeRun(result)).toBe(0);
      expect(outputsOf(h, result.record.id, "use")).toEqual({ "used.txt": "from-files" });
    }
  }, 90_000);

  it("the Docker API (podman's service) mounts them from a home with `:` or with `,`; with both it refuses, naming the path", async () => {
    service ??= await PodmanService.start();
    const api = [...CONTAINER, "--engine", "docker"];
    const env = { DOCKER_HOST: service.url };
    for (const odd of [":a", ",a"]) {
      const h = oddHome(odd);
      const result = await run(chainSpec(home), h, api, env);
      expect(result.code, describeRun(result)).toBe(0);
      expect(outputsOf(h, result.record.id, "use")).toEqual({ "used.txt": "from-files" });
    }
    const both = oddHome(":a,b");
    const refused = await run(chainSpec(home), both, api, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /make +: FAILED_START_ERROR .*E_MOUNT_PATH: podman's Docker-compatible API cannot mount "[^"]*:a,b1\/[^"]*": .*--engine podman/,
    );
  }, 120_000);
});
