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
const subnet = 200 + Math.floor(Math.random() * 50);

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

afterAll(() => {
  for (const network of [gone, live])
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
});
