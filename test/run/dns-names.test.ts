/**
 * Acceptance: `{{host:X}}` is a name (`TASK.GROUP.troupe.internal`) that
 * resolves by DNS in every member, as OSMO's do: busybox `nslookup` (which
 * asks the name server of /etc/resolv.conf and reads no /etc/hosts) and
 * getaddrinfo (`getent hosts`: /etc/hosts names only the member itself), the
 * bare task name too, each to the address recorded for the task; OSMO's own
 * test pattern (wait until `nslookup` finds the server, then `nc` to it by
 * name, again until it listens) works. On the host runtime in both isolations with both sandbox
 * builders, and on containers through podman's CLI and through the Docker API.
 */
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PodmanService,
  SANDBOX_BUILDERS,
  TestHome,
  describeRun,
  ensureBuilt,
  IS_ROOT,
  killStartedRuns,
  random,
  removeRunLeftovers,
  runJson,
  taskOf,
  type RunTarget,
} from "./helpers.js";

let home: TestHome;
let service: PodmanService | undefined;
const runIds = new Set<string>();

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(async () => {
  killStartedRuns();
  removeRunLeftovers(runIds);
  await service?.stop();
  home?.remove();
});

const PORT = 20_000 + Math.floor(Math.random() * 20_000);

/**
 * The group: `looker` (lead, busybox) waits as OSMO's client.sh does until
 * nslookup finds Echo_Server, prints what nslookup says for its full and bare
 * names, and reads its greeting over nc by name; `getter` (Debian's glibc, or
 * the host's) resolves both peers through getaddrinfo. Names as written in
 * mixed case with `_`: the DNS name is the one troupe compares (lower case, `-`).
 */
const workflow = () => `workflow:
  name: dns-names-${random()}
  groups:
  - name: Pair_Group
    tasks:
    - name: looker
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        retries=50
        while ! busybox nslookup {{host:Echo_Server}} > /dev/null ; do
          retries=$((retries - 1)); [ $retries -gt 0 ] || exit 3; sleep 0.2
        done
        echo "name={{host:Echo_Server}}"
        addr() { busybox nslookup "$1" | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | head -n1; }
        echo "dns=$(addr {{host:Echo_Server}})"
        echo "bare=$(addr echo-server)"
        echo "self=$(addr {{host:looker}})"
        # As OSMO's client.sh: the server may not listen yet.
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
          got=$(busybox nc -w 3 {{host:Echo_Server}} ${PORT} 2>/dev/null) && [ -n "$got" ] && break; sleep 0.2
        done
        echo "got=$got"
        sleep 1
    - name: Echo_Server
      image: alpine:3.18
      command: ["sh", "-c"]
      args: ["echo hello | busybox nc -l -p ${PORT}; sleep 30"]
    - name: getter
      image: ubuntu:24.04
      command: ["sh", "-c"]
      args:
      - |
        echo "getent=$(getent hosts {{host:Echo_Server}})"
        echo "lead=$(getent hosts {{host:looker}})"
        sleep 30
`;

interface Case {
  name: string;
  target: RunTarget;
  env?: Record<string, string>;
  extra?: string[];
  docker?: boolean;
}

const CASES: Case[] = [
  ...(["netns", "none"] as const).flatMap((target) =>
    SANDBOX_BUILDERS.slice(0, 2).map((builder) => ({ name: `host, ${target}, ${builder.name}`, target, env: builder.env })),
  ),
  { name: "containers, podman CLI", target: "container" },
  { name: "containers, Docker API (podman's service)", target: "container", docker: true },
];

describe("{{host:X}} names", () => {
  it.each(CASES)("resolve by DNS in every member ($name)", { timeout: 90_000 }, async (c) => {
    const env: Record<string, string> = { ...c.env };
    const extra: string[] = [];
    if (c.docker) {
      service ??= await PodmanService.start();
      env.DOCKER_HOST = service.url;
      extra.push("--engine", "docker");
    }
    const run = await runJson(home.spec("dns", workflow()), { home: home.home, target: c.target, env, extra, timeoutMs: 75_000 });
    runIds.add(run.record.id);
    expect(run.code, describeRun(run)).toBe(0);
    const server = taskOf(run.record, "Echo_Server").ip!;
    const lead = taskOf(run.record, "looker").ip!;
    expect(server).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const looker = home.log(run.record.id, "looker");
    expect(looker).toContain("name=echo-server.pair-group.troupe.internal\n");
    expect(looker).toContain(`dns=${server}\n`);
    expect(looker).toContain(`bare=${server}\n`);
    expect(looker).toContain(`self=${lead}\n`);
    expect(looker).toContain("got=hello\n");
    const getter = home.log(run.record.id, "getter");
    expect(getter).toMatch(new RegExp(`^getent=${server.replace(/\./g, "\\.")}\\s+echo-server\\.pair-group\\.troupe\\.internal$`, "m"));
    expect(getter).toMatch(new RegExp(`^lead=${lead.replace(/\./g, "\\.")}\\s+looker\\.pair-group\\.troupe\\.internal$`, "m"));
  });
});

const NOBODY = 65534;

describe.skipIf(!IS_ROOT)("{{host:X}} names where no name server can listen", () => {
  it("troupe run by an unprivileged user (port 53 closed to users): the run says so; getaddrinfo finds the names in /etc/hosts", async () => {
    const own = home.outsideTmp();
    chownSync(own, NOBODY, NOBODY);
    const file = join(own, "names.yaml");
    writeFileSync(
      file,
      `workflow:
  name: names-unprivileged-${random()}
  groups:
  - name: pair
    tasks:
    - name: asker
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo name={{host:other}}; getent hosts {{host:other}}; getent hosts other"]
    - name: other
      image: alpine:3.18
      command: ["sleep", "30"]
`,
    );
    const run = await runJson(file, { home: join(own, "home"), isolation: "none", asUser: NOBODY });
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stderr).toMatch(
      /no name server for the run \(port 53 needs root[^)]*\): \{\{host:\.\.\.\}\} names resolve through \/etc\/hosts only/,
    );
    const other = taskOf(run.record, "other").ip!;
    const log = readFileSync(join(own, "home", "runs", run.record.id, "logs", "asker.0.log"), "utf8");
    expect(log).toContain("name=other.pair.troupe.internal\n");
    expect(log).toMatch(new RegExp(`^${other.replace(/\./g, "\\.")}\\s+other\\.pair\\.troupe\\.internal\\s+other$`, "m"));
  });
});
