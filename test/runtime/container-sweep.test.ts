/**
 * The container runtime's sweep (podman CLI, as root) removes an isolation
 * rule whose network is gone, whoever made it: one left by a process killed
 * between removing a rule's network and the rule would otherwise stay for
 * good, and podman hands the same bridge name to a later network. A rule of
 * a network that exists stays. Only rules and networks named by this file
 * are made or looked at.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { PodmanCliBackend } from "../../src/runtime/container/cli-backend.js";
import { ContainerRuntime } from "../../src/runtime/index.js";
import { processToken } from "../../src/util/process-identity.js";
import { waitFor } from "../run/helpers.js";

const tag = randomBytes(4).toString("hex");
const gone = `troupe-sweeptest-${tag}-1`;
const live = `troupe-sweeptest-${tag}-2`;
/** Three /24s in a row of troupe's pool that no podman network has (other tests and people share the machine). */
function freeSubnets(): number {
  let used = "";
  try {
    used = execFileSync("podman", ["network", "ls", "--format", "{{range .Subnets}}{{.Subnet}} {{end}}"], { encoding: "utf8" });
  } catch {
    // no podman: the tests are skipped
  }
  const free = (n: number) => [n, n + 1, n + 2].every((k) => !used.includes(`10.214.${k}.0/24`));
  for (;;) {
    const n = 150 + Math.floor(Math.random() * 100);
    if (free(n)) return n;
  }
}
const subnet = freeSubnets();

function works(): boolean {
  try {
    execFileSync("podman", ["version"], { stdio: "ignore", timeout: 30_000 });
    execFileSync("iptables", ["-w", "-S", "FORWARD"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

const rulesNaming = (network: string): string[] =>
  execFileSync("iptables", ["-w", "-S", "FORWARD"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(`troupe: ${network} apart`));

const run = `sweeptest-${tag}-r`;
const [idleNet, busyNet] = [`troupe-${run}-1`, `troupe-${run}-2`];

afterAll(() => {
  execFileSync("podman", ["rm", "--force", "--time", "0", `troupe-${run}-box`], { stdio: "ignore" });
  for (const network of [idleNet, busyNet]) execFileSync("podman", ["network", "rm", "--force", network], { stdio: "ignore" });
  for (const network of [gone, live, idleNet, busyNet])
    for (const rule of rulesNaming(network)) execFileSync("sh", ["-c", `iptables -w ${rule.replace(/^-A /, "-D ")}`], { stdio: "ignore" });
  execFileSync("podman", ["network", "rm", "--force", live], { stdio: "ignore" });
});

describe.skipIf(!works())("the container runtime's sweep (podman CLI, as root)", () => {
  it("removes an isolation rule whose network is gone and keeps one whose network exists", async () => {
    const backend = await PodmanCliBackend.connect();
    // A network of a live troupe (this process), with its rule; and a rule whose network is gone.
    await backend.createNetwork(live, `10.214.${subnet}.0/24`, `10.214.${subnet}.1`, {
      "troupe.run": `sweeptest-${tag}`,
      "troupe.owner": processToken(),
    });
    const bridge = `trpsw${tag}`.slice(0, 15);
    execFileSync("iptables", [
      "-w",
      "-I",
      "FORWARD",
      "-i",
      bridge,
      "!",
      "-o",
      bridge,
      "-d",
      "10.214.0.0/16",
      "-m",
      "comment",
      "--comment",
      `troupe: ${gone} apart`,
      "-j",
      "DROP",
    ]);
    // The live network's rule goes in while its first containers would come up.
    expect(
      await waitFor(
        () => rulesNaming(live),
        (r) => r.length === 1,
        10_000,
      ),
    ).toHaveLength(1);
    expect(rulesNaming(gone)).toHaveLength(1);

    const runtime = new ContainerRuntime({ backend, pull: "never" });
    const removed = await runtime.sweep();
    expect(removed).toContain(`isolation rule of the gone network ${gone}`);
    expect(removed.join("\n")).not.toContain(live);
    expect(rulesNaming(gone)).toEqual([]);
    expect(rulesNaming(live)).toHaveLength(1);
    await backend.removeNetwork(live);
    expect(rulesNaming(live)).toEqual([]);
  }, 60_000);

  it("a resumed run removes, as it opens, its networks that no container is on and keeps those with one", async () => {
    const backend = await PodmanCliBackend.connect();
    const labels = { "troupe.run": run, "troupe.owner": "kept:1:0:gone" };
    await backend.createNetwork(idleNet, `10.214.${subnet + 1}.0/24`, `10.214.${subnet + 1}.1`, labels);
    await backend.createNetwork(busyNet, `10.214.${subnet + 2}.0/24`, `10.214.${subnet + 2}.1`, labels);
    // A container an earlier server left running on one of them.
    execFileSync("podman", ["run", "-d", "--name", `troupe-${run}-box`, "--network", busyNet, "alpine:3.18", "sleep", "120"], {
      stdio: "ignore",
    });
    const runtime = new ContainerRuntime({ backend, pull: "never" });
    await runtime.open({ runId: run, dataDir: "/nonexistent", keepTasks: true, resumed: true });
    const networks = execFileSync("podman", ["network", "ls", "--format", "{{.Name}}"], { encoding: "utf8" }).split("\n");
    expect(networks).not.toContain(idleNet);
    expect(networks).toContain(busyNet);
    expect(rulesNaming(idleNet)).toEqual([]);
  }, 60_000);
});
