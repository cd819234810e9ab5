/**
 * Acceptance: a group whose members all listen on the same port, each
 * reached by the lead through {{host:}}: with --isolation netns on this
 * machine, and on the Slurm test cluster.
 */
import { afterEach, describe, expect, it } from "vitest";
import { describeRun, killStartedRuns, random, runJson, taskOf } from "./helpers.js";
import { skipReason, SLURM, targetTitle, warnIfSkipped } from "./slurm-target.js";
import { holdClusterDuring, suiteHomes } from "./target-homes.js";

warnIfSkipped("test/run/same-port.test.ts");
const homeOf = suiteHomes();
afterEach(() => killStartedRuns());

/**
 * Where a group's members each listen on one port: --isolation netns gives each its own address on this
 * machine; Slurm's spread: nodes (the default) puts each on a node of its own, and the test cluster has three
 * nodes: a client and two servers there.
 */
const SAME_PORT = [
  { target: "netns", servers: 4 },
  { target: "slurm", servers: 2 },
] as const;

for (const { target, servers: count } of SAME_PORT)
  describe.skipIf(skipReason(target) !== undefined)(`troupe run networking, on ${targetTitle(target)}`, () => {
    holdClusterDuring(target);
    it(`${count} members of one group listen on the same port; the lead reaches each through {{host:}}`, async () => {
      const home = homeOf(target);
      const servers = Array.from({ length: count }, (_, i) => `s${i + 1}`);
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      // On Slurm {{host:X}} is X's node's address, which no name of troupe's stands for on the nodes.
      const resolves = target === "slurm" ? "" : `echo "$name resolves to $(getent hosts "$name" | cut -d' ' -f1)"`;
      const file = home.spec(
        "same-port",
        `workflow:
  name: same-port-${random()}
  groups:
  - name: cluster
    tasks:
    - name: client
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        set -e
        for s in ${servers.map((s) => `${s}={{host:${s}}}`).join(" ")}; do
          name=\${s%%=*}; address=\${s#*=}
          out=""; i=0
          # The servers may not be listening yet: ask again until one answers (at most 5 s).
          while [ -z "$out" ] && [ $i -lt 100 ]; do
            out=$(nc -N -w 2 "$address" ${port} </dev/null 2>/dev/null || true)
            [ -n "$out" ] || sleep 0.05; i=$((i+1))
          done
          echo "$name at $address: $out"
          # The member's name resolves to the same address inside the group.
          ${resolves}
        done
${servers
  .map(
    (s) => `    - name: ${s}
      image: alpine:3.18
      command: ["sh", "-c", "echo hello from ${s} | nc -N -l -p ${port}"]
`,
  )
  .join("")}`,
      );
      const run = await runJson(file, { home: home.home, target, timeoutMs: target === "slurm" ? 60_000 : 20_000 });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      const addresses = servers.map((s) => taskOf(run.record, s).ip);
      const clientIp = taskOf(run.record, "client").ip;
      expect(new Set([...addresses, clientIp]).size).toBe(count + 1);
      if (target === "slurm") {
        // Each on a node of its own: the members' addresses are three of the cluster's nodes'.
        const nodes = [1, 2, 3].map((n) => SLURM.cluster!.nodeAddress(n));
        for (const address of [...addresses, clientIp]) expect(nodes).toContain(address);
      } else {
        for (const address of [...addresses, clientIp]) expect(address).toMatch(/^10\.\d+\.\d+\.\d+$/);
        // One subnet for the run.
        expect(new Set([...addresses, clientIp].map((a) => a!.split(".").slice(0, 3).join("."))).size).toBe(1);
      }
      const log = home.log(run.record.id, "client");
      // {{host:s1}} is the member's DNS name (test/run/dns-names.test.ts), which resolves to its recorded address;
      // on Slurm, the address of its node.
      const expected = servers.flatMap((s, i) =>
        target === "slurm"
          ? [`${s} at ${addresses[i]}: hello from ${s}`]
          : [`${s} at ${s}.cluster.troupe.internal: hello from ${s}`, `${s} resolves to ${addresses[i]}`],
      );
      expect(log.trimEnd().split("\n")).toEqual(expected);
      for (const s of servers) expect(taskOf(run.record, s).status, s).toBe("COMPLETED");
    });
  });
