/**
 * The host runtime's per-run network on real namespaces (as root; skipped
 * otherwise): a bridge per run, members in their own `unshare --net`
 * namespaces, each reachable by its address from the others and from the host,
 * everything gone after close() or a sweep. Only private addresses and loopback.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  canUseNetworkNamespaces,
  netProcessCount,
  openRunNetwork,
  sweepRunNetworks,
  type RunNetwork,
} from "../../src/runtime/host/network.js";

const execFileAsync = promisify(execFile);
const PORT = 8080;
/** Every run key of this file starts so; the clean-up sweep touches nothing else on the machine. */
const KEY_PREFIX = `nettest-${process.pid}-${randomBytes(3).toString("hex")}`;
const runKey = (name: string): string => `${KEY_PREFIX}-${name}`;

function available(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return dir !== "";
    } catch {
      return false;
    }
  });
}

// Network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and these tools; CI runs as root and
// installs them, so there these tests run. On a laptop without root they cannot, and say so by skipping.
const CAN_RUN = canUseNetworkNamespaces() && available("unshare") && available("nsenter") && available("python3");
const HAS_IPTABLES = available("iptables");

const scratch = mkdtempSync(join(tmpdir(), "troupe-net-"));
const networks: RunNetwork[] = [];
const children: ChildProcess[] = [];

async function open(name: string, pool?: string): Promise<RunNetwork> {
  const net = await openRunNetwork(runKey(name), pool === undefined ? {} : { pool });
  networks.push(net);
  return net;
}

async function ip(...args: string[]): Promise<string> {
  return (await execFileAsync("ip", args)).stdout;
}
async function links(): Promise<Array<{ ifname: string; master?: string; ifalias?: string }>> {
  return JSON.parse((await ip("-j", "link", "show")) || "[]");
}
async function iptablesSave(): Promise<string> {
  return (await execFileAsync("iptables-save")).stdout;
}

/** Starts `unshare --net --fork --kill-child sh -c SCRIPT` and resolves once it printed `ready` (so its namespace exists). */
function startMember(script: string, args: string[] = []): Promise<{ child: ChildProcess; pid: number; lines: string[] }> {
  const child = spawn("unshare", ["--net", "--fork", "--kill-child", "sh", "-c", `echo ready; ${script}`, "sh", ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  const lines: string[] = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        if (line === "ready") resolve({ child, pid: child.pid as number, lines });
      }
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`member exited early (${code}): ${stderr}`)));
  });
}

/** Resolves when `lines` gets `wanted` (or rejects after `ms`). */
async function waitForLine(lines: string[], wanted: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!lines.includes(wanted)) {
    if (Date.now() > deadline) throw new Error(`no "${wanted}" within ${ms} ms; got ${JSON.stringify(lines)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** SIGKILL to the unshare process we started (its --kill-child takes its child along); waits for its exit. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** A TCP server on PORT answering `<name> <peer address>` to each connection. */
const SERVER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", ${PORT}))
s.listen(64)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"{sys.argv[1]} {peer[0]}\\n".encode())
    c.close()
`;
const CLIENT = `
import socket, sys
c = socket.create_connection((sys.argv[1], ${PORT}), timeout=5)
print(c.makefile().readline().strip())
`;

function fromHost(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port: PORT, timeout: 5000 });
    let data = "";
    socket.on("data", (chunk) => (data += chunk.toString()));
    socket.on("end", () => resolve(data.trim()));
    socket.on("timeout", () => socket.destroy(new Error(`timeout connecting to ${address}:${PORT}`)));
    socket.on("error", reject);
  });
}

afterEach(async () => {
  await Promise.all(children.splice(0).map(stop));
  await Promise.all(networks.splice(0).map((net) => net.close().catch(() => undefined)));
});

afterAll(async () => {
  if (CAN_RUN) await sweepRunNetworks((key) => !key.startsWith(KEY_PREFIX)).catch(() => undefined);
  rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(!CAN_RUN)("run network (real namespaces, as root)", () => {
  it("four members listen on one port, reach each other by address, and the host reaches each via the bridge", async () => {
    const t0 = performance.now();
    const net = await open("four");
    const openMs = performance.now() - t0;
    expect(net.bridge).toMatch(/^trp-[0-9a-f]{8}$/);
    expect(net.bridge.length).toBeLessThanOrEqual(15);
    expect(net.subnet).toMatch(/^10\.213\.\d+\.0\/24$/);
    expect(net.gateway).toBe(net.subnet.replace(/0\/24$/, "1"));
    expect(net.prefixLength).toBe(24);
    if (HAS_IPTABLES) expect(net.egress, net.egressNote).toBe(true);
    else expect(net.egressNote).toMatch(/iptables/);

    const names = ["lead", "w1", "w2", "w3"];
    const members = await Promise.all(
      names.map(async (name) => {
        const address = net.allocate();
        const script = join(scratch, `${name}.ip`);
        writeFileSync(script, net.insideScript(address));
        const started = await startMember(`read -r go; ip -batch "$1" || exit 7; exec python3 -u -c "$2" "$3"`, [script, SERVER, name]);
        return { name, address, ...started };
      }),
    );
    expect(new Set(members.map((m) => m.address)).size).toBe(4);

    const before = netProcessCount();
    const t1 = performance.now();
    await net.attach(members.map(({ pid, address }) => ({ pid, address })));
    const attachMs = performance.now() - t1;
    expect(netProcessCount() - before).toBe(1);
    for (const m of members) m.child.stdin?.write("go\n");
    await Promise.all(members.map((m) => waitForLine(m.lines, "listening")));

    // (a) every member reaches every other by its address; the server sees the caller's own address.
    const pairs = members.flatMap((from) => members.filter((to) => to !== from).map((to) => ({ from, to })));
    const answers = await Promise.all(
      pairs.map(async ({ from, to }) => {
        const { stdout } = await execFileAsync("nsenter", ["-t", String(from.pid), "-n", "python3", "-c", CLIENT, to.address]);
        return { expected: `${to.name} ${from.address}`, got: stdout.trim() };
      }),
    );
    for (const { expected, got } of answers) expect(got).toBe(expected);

    // (b) the host reaches each through the bridge (its address there is the gateway).
    for (const m of members) expect(await fromHost(m.address)).toBe(`${m.name} ${net.gateway}`);

    // Inside: eth0 has the address, the default route goes via the gateway.
    const route = await execFileAsync("nsenter", ["-t", String(members[0]!.pid), "-n", "ip", "route", "show", "default"]);
    expect(route.stdout).toContain(`default via ${net.gateway} dev eth0`);

    // (c) close() while the members still run: no bridge, no veth, no rule; the members lost eth0.
    const t2 = performance.now();
    await net.close();
    const closeMs = performance.now() - t2;
    const after = await links();
    expect(after.map((l) => l.ifname)).not.toContain(net.bridge);
    expect(after.filter((l) => l.master === net.bridge || l.ifname.startsWith(`v${net.bridge.slice(4)}-`))).toEqual([]);
    if (HAS_IPTABLES) expect(await iptablesSave()).not.toContain(net.bridge);
    const inside = await execFileAsync("nsenter", ["-t", String(members[1]!.pid), "-n", "ip", "-br", "link"]);
    expect(inside.stdout).not.toContain("eth0");
    await net.close(); // idempotent

    console.log(
      `[network] open ${openMs.toFixed(1)} ms, attach of 4 ${attachMs.toFixed(1)} ms, close ${closeMs.toFixed(1)} ms (egress: ${net.egress})`,
    );
  });

  it.skipIf(!HAS_IPTABLES)("gives egress through NAT (to a stand-in 'outside' namespace on a private /30)", async () => {
    const net = await open("egress");
    expect(net.egress, net.egressNote).toBe(true);
    // The outside: its own namespace, linked to the host by a veth on 10.214.250.0/30, with no route back
    // to the run's subnet, so only a masqueraded connection (source = the host's 10.214.250.1) gets an answer.
    const outsideScript = join(scratch, "outside.ip");
    writeFileSync(outsideScript, "link set dev lo up\naddr add 10.214.250.2/30 dev eth0\nlink set dev eth0 up\n");
    const outside = await startMember(`read -r go; ip -batch "$1" || exit 7; exec python3 -u -c "$2" outside`, [outsideScript, SERVER]);
    const hostEnd = `vtt${randomBytes(4).toString("hex")}`;
    await ip("link", "add", "name", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", String(outside.pid));
    try {
      await ip("addr", "add", "10.214.250.1/30", "dev", hostEnd);
      await ip("link", "set", "dev", hostEnd, "up");
      outside.child.stdin?.write("go\n");
      await waitForLine(outside.lines, "listening");

      const address = net.allocate();
      const script = join(scratch, "egress.ip");
      writeFileSync(script, net.insideScript(address));
      const member = await startMember(`read -r go; ip -batch "$1" || exit 7; echo configured; exec cat`, [script]);
      await net.attach([{ pid: member.pid, address }]);
      member.child.stdin?.write("go\n");
      await waitForLine(member.lines, "configured");
      const { stdout } = await execFileAsync("nsenter", ["-t", String(member.pid), "-n", "python3", "-c", CLIENT, "10.214.250.2"]);
      expect(stdout.trim()).toBe("outside 10.214.250.1");
    } finally {
      await ip("link", "del", "dev", hostEnd).catch(() => undefined);
    }
  });

  it("attaches 50 members with one ip batch", async () => {
    const net = await open("fifty");
    const members = await Promise.all(
      Array.from({ length: 50 }, async () => ({ address: net.allocate(), ...(await startMember("read -r go")) })),
    );
    const before = netProcessCount();
    const t0 = performance.now();
    await net.attach(members.map(({ pid, address }) => ({ pid, address })));
    const attachMs = performance.now() - t0;
    expect(netProcessCount() - before).toBe(1);
    const ports = (await links()).filter((l) => l.master === net.bridge);
    expect(ports).toHaveLength(50);
    const inside = await Promise.all(
      members.map(async (m) => (await execFileAsync("nsenter", ["-t", String(m.pid), "-n", "ip", "-br", "link", "show", "eth0"])).stdout),
    );
    for (const text of inside) expect(text).toMatch(/^eth0@/);
    const t1 = performance.now();
    await net.close();
    const closeMs = performance.now() - t1;
    // One ip process for the 50 (counted above) is the point; the times are for the reader, not a bound.
    console.log(`[network] attach of 50 members: ${attachMs.toFixed(1)} ms in one ip -batch; close with 50 ports ${closeMs.toFixed(1)} ms`);
  });

  it("refuses a pid that is still in the host's namespace, and a bad address, without leaving links", async () => {
    const net = await open("refuse");
    await expect(net.attach([{ pid: process.pid, address: net.allocate() }])).rejects.toThrow(/still in the host's network namespace/);
    await expect(net.attach([{ pid: process.pid, address: "192.168.1.9" }])).rejects.toThrow(/not a member address/);
    const { pid } = await startMember("read -r go");
    const child = children.at(-1)!;
    await stop(child);
    await expect(net.attach([{ pid, address: net.allocate() }])).rejects.toThrow(/no such process|cannot attach/);
    expect((await links()).filter((l) => l.master === net.bridge)).toEqual([]);
  });

  it("allocates round-robin, says so when the subnet is full, and reuses released addresses", async () => {
    const net = await open("alloc");
    const all = Array.from({ length: 253 }, () => net.allocate());
    expect(new Set(all).size).toBe(253);
    expect(all).not.toContain(net.gateway);
    expect(() => net.allocate()).toThrow(/no free address: all 253 are in use/);
    net.release(all[10]!);
    expect(net.allocate()).toBe(all[10]);
    expect(() => net.insideScript("10.0.0.1")).toThrow(/not a member address/);
    expect(net.insideScript(all[0]!)).toBe(
      `link set dev lo up\naddr add ${all[0]}/24 dev eth0\nlink set dev eth0 up\nroute add default via ${net.gateway} dev eth0\n`,
    );
  });

  it("sweeps the bridge, veths and rules of a run that is gone and keeps a live one", async () => {
    const dead = await open("dead");
    const alive = await open("alive");
    const member = await startMember("read -r go");
    await dead.attach([{ pid: member.pid, address: dead.allocate() }]);
    const removed = await sweepRunNetworks((key) => key !== dead.runKey);
    expect(removed.some((r) => r.startsWith(`bridge ${dead.bridge} of run ${dead.runKey} (with 1 veth)`))).toBe(true);
    expect(removed.join("\n")).not.toContain(alive.bridge);
    const names = (await links()).map((l) => l.ifname);
    expect(names).not.toContain(dead.bridge);
    expect(names.filter((n) => n.startsWith(`v${dead.bridge.slice(4)}-`))).toEqual([]);
    expect(names).toContain(alive.bridge);
    if (HAS_IPTABLES) {
      const rules = await iptablesSave();
      expect(rules).not.toContain(dead.bridge);
      expect(rules).toContain(`troupe:${alive.runKey}:${alive.bridge}`);
      expect(removed.filter((r) => r.includes(dead.bridge) && r.includes("rule"))).toHaveLength(3);
    }
    await dead.close(); // nothing left to do, still fine
    expect(await sweepRunNetworks((key) => key !== dead.runKey)).toEqual([]);
  });

  it.skipIf(!HAS_IPTABLES)(
    "removes rules whose bridge is gone, whatever their run: a process killed between the two removals",
    async () => {
      const net = await open("ruleless");
      const tag = `troupe:${net.runKey}:${net.bridge}`;
      expect(await iptablesSave()).toContain(tag);
      // What a troupe killed inside close() leaves: the bridge removed, its rules not yet.
      await execFileAsync("ip", ["link", "del", "dev", net.bridge]);
      // Every run counts as alive (the run key of a server's kept run, say): the rules go all the same.
      const removed = await sweepRunNetworks(() => true);
      expect(removed.filter((r) => r.includes(net.bridge))).toHaveLength(3);
      expect(await iptablesSave()).not.toContain(tag);
    },
  );

  it("with idleOnly, removes a gone run's bridges that no member is on and keeps one with members, with its rules", async () => {
    const idle = await open("resumed");
    const busy = await open("resumed");
    const member = await startMember("read -r go");
    await busy.attach([{ pid: member.pid, address: busy.allocate() }]);
    const removed = await sweepRunNetworks((key) => key !== idle.runKey, { idleOnly: true });
    expect(removed.filter((r) => r.startsWith("bridge "))).toEqual([`bridge ${idle.bridge} of run ${idle.runKey}`]);
    const names = (await links()).map((l) => l.ifname);
    expect(names).not.toContain(idle.bridge);
    expect(names).toContain(busy.bridge);
    if (HAS_IPTABLES) {
      const rules = await iptablesSave();
      expect(rules).not.toContain(`:${idle.bridge}"`);
      expect(rules).toContain(`troupe:${busy.runKey}:${busy.bridge}`);
    }
  });

  it("gives networks opened at once different subnets, and says when the pool is used up", async () => {
    const opened = await Promise.all(["c1", "c2", "c3", "c4"].map((name) => open(name)));
    expect(new Set(opened.map((n) => n.subnet)).size).toBe(4);
    expect(new Set(opened.map((n) => n.bridge)).size).toBe(4);

    // A pool of two /24s: two concurrent opens get both, a third finds none.
    const pool = "10.214.6.0/23";
    const pair = await Promise.all([open("p1", pool), open("p2", pool)]);
    expect(pair.map((n) => n.subnet).sort()).toEqual(["10.214.6.0/24", "10.214.7.0/24"]);
    await expect(open("p3", pool)).rejects.toThrow(/no free \/24 left in 10\.214\.6\.0\/23/);
    await expect(openRunNetwork("bad key!")).rejects.toThrow(/invalid run key/);
  });
});
