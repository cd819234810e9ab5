/**
 * `hostNetwork: true` on real runtimes: where the pool allows it
 * (`--allow-host-network`), the task runs on the machine's own network (the
 * host sandbox gives it no network namespace of its own; podman runs it with
 * `--network host`): it is in this machine's network namespace, and a sibling
 * on a network of its own reaches it at `{{host:TASK}}`, the machine's
 * address. Without the allowance the workflow is refused before it runs
 * (E_NOT_ALLOWED, exit 2), and a runtime that cannot give it refuses it too.
 */
import { readlinkSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileWorkflow, hostNetworkRefusal, policyRefusals } from "../../src/plan/index.js";
import { machineAddress } from "../../src/runtime/machine-address.js";
import { planSubmission } from "../../src/server/plan-submission.js";
import { loadWorkflowSpec } from "../../src/spec/index.js";
import { ensureBuilt, IS_ROOT, runJson, taskOf, TestHome, troupe, type RunTarget } from "./helpers.js";

const workflow = (port: number) => `workflow:
  name: host-network
  groups:
  - name: pair
    tasks:
    - name: server
      lead: true
      image: alpine:3.18
      hostNetwork: true
      command: [sh, -c, "echo netns=$(readlink /proc/self/ns/net) && busybox nc -l -p ${port} -w 30"]
    - name: client
      image: alpine:3.18
      command: [sh, -c, "echo netns=$(readlink /proc/self/ns/net) address={{host:server}} && for i in $(seq 100); do echo hello | busybox nc -w 2 {{host:server}} ${port} && exit 0; sleep 0.2; done; exit 1"]
`;

describe("hostNetwork: true", () => {
  let home: TestHome;
  const hostNetns = readlinkSync("/proc/self/ns/net");
  const address = machineAddress();

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
  }, 200_000);
  afterAll(() => home?.remove());

  it("is refused before the run unless the pool allows it (E_NOT_ALLOWED, exit 2), saying how to allow it", async () => {
    const result = await troupe(["run", home.spec("refused", workflow(0)), "--runtime", "host"], { home: home.home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "error E_NOT_ALLOWED: task server asks for hostNetwork: true, which the pool of troupe run does not allow",
    );
    expect(result.stderr).toContain("--allow-host-network for troupe run");
  });

  it("a runtime that cannot put a task on the machine's network refuses it; one that can, and a workflow without it, do not", async () => {
    const loaded = await loadWorkflowSpec(workflow(1));
    const plan = compileWorkflow(loaded.spec!);
    expect(hostNetworkRefusal(plan, false, "the slurm runtime")).toBe(
      "task server asks for hostNetwork: true, which the slurm runtime cannot give (the host runtime and podman containers can)",
    );
    expect(hostNetworkRefusal(plan, true, "the host runtime")).toBeUndefined();
    expect(policyRefusals(plan, { privilegedAllowed: false, hostNetworkAllowed: true, allowedMounts: [] }, "p")).toEqual([]);
    // No longer a field without effect: no W_NOT_IMPLEMENTED.
    expect(loaded.diagnostics.filter((d) => d.code === "W_NOT_IMPLEMENTED")).toEqual([]);
  });

  it("a server's pool refuses it unless it allows it and its runtime can give it (E_POOL_POLICY)", async () => {
    const pool = {
      name: "p",
      capacity: { cpu: 8, gpu: 0, memoryBytes: 8 * 1024 ** 3 },
      maxRetries: 0,
      privilegedAllowed: false,
      allowedMounts: [],
    };
    const request = { user: "u", spec: workflow(1), set: {}, setString: {}, maxTasks: 100, wantPlan: false };
    const refused = await planSubmission({ ...request, pool: { ...pool, hostNetwork: true } });
    expect(refused).toMatchObject({ kind: "refused", code: "E_POOL_POLICY" });
    expect(JSON.stringify(refused)).toContain("host_network_allowed in the pool's config");
    const cannot = await planSubmission({ ...request, pool: { ...pool, hostNetworkAllowed: true, hostNetwork: false } });
    expect(JSON.stringify(cannot)).toContain("which the pool p's runtime cannot give");
    expect(await planSubmission({ ...request, pool: { ...pool, hostNetworkAllowed: true, hostNetwork: true } })).toMatchObject({
      kind: "planned",
    });
  });

  const targets: RunTarget[] = [...(IS_ROOT ? (["netns"] as const) : []), ...(process.env.CONTAINERS_CONF ? (["container"] as const) : [])];
  it.skipIf(targets.length === 0).each(targets)(
    "runs on the machine's network, reached by a sibling on its own at {{host:server}}, the machine's address (%s)",
    async (target) => {
      const port = await freeHostPort();
      const result = await runJson(home.spec(`host-network-${target}`, workflow(port)), {
        home: home.home,
        target,
        extra: ["--allow-host-network"],
        timeoutMs: 120_000,
      });
      expect(result.code, result.stderr + JSON.stringify(result.record)).toBe(0);
      expect(taskOf(result.record, "client").status).toBe("COMPLETED");
      const server = home.log(result.record.id, "server");
      const client = home.log(result.record.id, "client");
      // The server is in this machine's network namespace; its sibling in one of its own.
      expect(server).toContain(`netns=${hostNetns}\n`);
      expect(client).not.toContain(`netns=${hostNetns}`);
      expect(client).toContain(`address=${address}\n`);
      expect(server).toContain("hello\n");
      expect(taskOf(result.record, "server").ip).toBe(address);
    },
    150_000,
  );
});

/**
 * A port the task can listen on in the machine's own network: below the kernel's ephemeral range (32768 and up
 * here), where the outgoing connections of the rest of the suite take theirs, and free when asked.
 */
async function freeHostPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
