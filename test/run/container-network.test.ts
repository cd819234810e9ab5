/**
 * Acceptance: the container runtime's networks, from inside real containers.
 * Tasks alone in their group share the run's network with isolated bridge
 * ports: they reach the outside (here: a server of this test on the host,
 * through their gateway) but not each other; a group's members reach each
 * other by name on their own network, which no other network reaches.
 */
import { join } from "node:path";
import { createServer, type Server } from "node:net";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, describeRun, ensureBuilt, random, runJson, taskOf } from "./helpers.js";

let home: TestHome;
let server: Server;
let hostPort: number;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  // The "outside" a task must reach: a TCP server on every address of this machine.
  server = createServer((socket) => socket.end("hello from the host\n"));
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  hostPort = (server.address() as { port: number }).port;
}, 200_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  home?.remove();
});

/** busybox sh: the gateway of the container's network, from its routing table. */
const GATEWAY = `$(ip route | awk '/^default/ {print $3}')`;

describe("container networks", () => {
  it("single tasks share the run's network, reach the outside through it, and cannot reach each other", { timeout: 60_000 }, async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const file = home.spec(
      "isolated-singles",
      `workflow:
  name: singles-${random()}
  tasks:
  - name: listener
    image: alpine:3.18
    command: ["sh", "-c", "for i in 1 2 3 4 5 6; do echo secret | nc -l -p ${port} & sleep 0.5; done; echo listened"]
  - name: prober
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      sleep 0.5
      echo "outside: $(nc -w 2 ${GATEWAY} ${hostPort})"
      prefix=$(ip route | awk '/^default/ {split($3, a, "."); print a[1] "." a[2] "." a[3]}')
      for host in 2 3 4 5 6; do
        out=$(nc -w 1 "$prefix.$host" ${port} 2>/dev/null)
        [ -n "$out" ] && echo "reached $prefix.$host: $out"
      done
      echo "probed $prefix.2-6"
`,
    );
    const run = await runJson(file, { home: home.home, target: "container", timeoutMs: 40_000 });
    expect(run.code, describeRun(run)).toBe(0);
    const listener = taskOf(run.record, "listener").ip!;
    const prober = taskOf(run.record, "prober").ip!;
    // One network for both (the same /24), the listener among the addresses probed.
    const subnet = (ip: string) => ip.split(".").slice(0, 3).join(".");
    expect(subnet(listener)).toBe(subnet(prober));
    expect(Number(listener.split(".")[3])).toBeGreaterThanOrEqual(2);
    expect(Number(listener.split(".")[3])).toBeLessThanOrEqual(6);
    const log = home.log(run.record.id, "prober");
    expect(log).toContain("outside: hello from the host\n");
    expect(log).toContain(`probed ${subnet(prober)}.2-6\n`);
    expect(log).not.toContain("reached");
  });

  it("a group's members reach each other by name; a task outside the group cannot reach them", { timeout: 60_000 }, async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const name = `apart-${random()}`;
    // The outsider asks this test where the teller is (wherever the engine put its network): its address once it runs.
    const teller = createServer((socket) => {
      const answer = () => {
        const db = new Database(join(home.home, "troupe.db"), { readonly: true, fileMustExist: true });
        try {
          return db
            .prepare<[string], { ip: string | null }>(
              "SELECT t.ip FROM tasks t JOIN runs r ON r.id = t.run_id WHERE r.name = ? AND t.name = 'teller' AND t.status = 'RUNNING'",
            )
            .get(name)?.ip;
        } catch {
          return undefined; // not written yet
        } finally {
          db.close();
        }
      };
      // At once, empty until the teller runs (busybox nc gives up waiting once its input ends): the outsider asks again.
      socket.end(`${answer() ?? ""}\n`);
    });
    await new Promise<void>((resolve) => teller.listen(0, "0.0.0.0", resolve));
    const askPort = (teller.address() as { port: number }).port;
    const file = home.spec(
      "group-apart",
      `workflow:
  name: ${name}
  groups:
  - name: pair
    tasks:
    - name: asker
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        sleep 0.3
        echo "by name: $(nc -w 2 teller ${port})"
        sleep 2
    - name: teller
      image: alpine:3.18
      command: ["sh", "-c", "for i in 1 2 3 4 5 6; do echo told | nc -l -p ${port} & sleep 0.5; done"]
  - name: outsider-group
    tasks:
    - name: outsider
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        tries=150
        until [ -n "$teller" ] || [ $tries -eq 0 ]; do teller=$(nc -w 2 ${GATEWAY} ${askPort}); tries=$((tries - 1)); sleep 0.2; done
        sleep 0.5
        out=$(nc -w 1 "$teller" ${port} 2>/dev/null)
        [ -n "$out" ] && echo "reached $teller: $out"
        echo "probed $teller"
`,
    );
    const run = await runJson(file, { home: home.home, target: "container", timeoutMs: 40_000 });
    expect(run.code, describeRun(run)).toBe(0);
    expect(home.log(run.record.id, "asker")).toBe("by name: told\n");
    await new Promise((resolve) => teller.close(resolve));
    // The outsider probed the teller's own address, while the teller listened.
    const log = home.log(run.record.id, "outsider");
    expect(log).toContain(`probed ${taskOf(run.record, "teller").ip}\n`);
    expect(log).not.toContain("reached");
  });
});
