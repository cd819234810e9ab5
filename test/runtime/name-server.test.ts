/**
 * troupe's name server for host runs, over real UDP and TCP on loopback: it
 * answers the groups' names (only to their own members where it is told to
 * scope by source), NOERROR without records for other types of a known name,
 * NXDOMAIN for unknown names under troupe.internal (never passed on), passes
 * other names to its upstream as they came, answers no one it does not
 * accept, and forgets a group's names when the group gives its addresses back.
 */
import { createSocket, type Socket } from "node:dgram";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { query, readAnswer, RCODE, reply, readQuestion } from "../../src/runtime/dns-wire.js";
import { MemberNameServer, hostResolverConfig } from "../../src/runtime/name-server.js";
import { groupDomain, memberName, nameLabel } from "../../src/runtime/member-names.js";
import { resolvConfText } from "../../src/runtime/host/sandbox-names.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A fake upstream resolver: answers every A query with 192.0.2.7, counting what it was asked. */
async function upstream(): Promise<{ port: number; asked: string[] }> {
  const socket = createSocket("udp4");
  const asked: string[] = [];
  socket.on("message", (message, from) => {
    const question = readQuestion(message);
    if (!question || "error" in question) return;
    asked.push(question.name);
    socket.send(reply(message, question, RCODE.NOERROR, ["192.0.2.7"]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, asked };
}

async function server(options: {
  scope?: boolean;
  accepts?: (source: string) => boolean;
  upstreamPort?: number;
}): Promise<MemberNameServer> {
  const s = await MemberNameServer.start({
    address: "127.0.0.1",
    port: 0,
    accepts: options.accepts ?? ((source) => source.startsWith("127.")),
    scopeBySource: options.scope ?? false,
    upstream: options.upstreamPort ? [{ address: "127.0.0.1", port: options.upstreamPort }] : [],
  });
  closers.push(() => s.close());
  return s;
}

/** One UDP query from `from` (a loopback address), its answer or undefined after 300 ms. */
async function ask(port: number, name: string, type = 1, from = "127.0.0.1"): Promise<ReturnType<typeof readAnswer>> {
  const socket: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 300);
      socket.on("message", (message) => {
        clearTimeout(timer);
        resolve(readAnswer(message));
      });
      socket.send(query(4242, name, type), port, "127.0.0.1");
    });
  } finally {
    socket.close();
  }
}

describe("the run's name server", () => {
  it("answers a group's names (A; NOERROR without records for AAAA), NXDOMAIN for others under troupe.internal, and forgets them", async () => {
    const up = await upstream();
    const s = await server({ upstreamPort: up.port });
    s.serveGroup("Train_Group", { Master: "10.213.9.2", worker: "10.213.9.3" });
    expect(await ask(s.port, "master.train-group.troupe.internal")).toEqual({ id: 4242, rcode: RCODE.NOERROR, addresses: ["10.213.9.2"] });
    expect(await ask(s.port, "WORKER.Train-Group.troupe.internal")).toMatchObject({ rcode: RCODE.NOERROR, addresses: ["10.213.9.3"] });
    expect(await ask(s.port, "master.train-group.troupe.internal", 28)).toEqual({ id: 4242, rcode: RCODE.NOERROR, addresses: [] });
    expect(await ask(s.port, "nobody.train-group.troupe.internal")).toMatchObject({ rcode: RCODE.NXDOMAIN, addresses: [] });
    expect(up.asked).toEqual([]);
    s.forget(["10.213.9.2", "10.213.9.3"]);
    expect(await ask(s.port, "master.train-group.troupe.internal")).toMatchObject({ rcode: RCODE.NXDOMAIN });
  });

  it("passes other names to the upstream resolver as they came, and its answer back", async () => {
    const up = await upstream();
    const s = await server({ upstreamPort: up.port });
    expect(await ask(s.port, "registry.example.org")).toEqual({ id: 4242, rcode: RCODE.NOERROR, addresses: ["192.0.2.7"] });
    expect(up.asked).toEqual(["registry.example.org"]);
  });

  it("answers SERVFAIL for other names when there is no upstream", async () => {
    const s = await server({});
    expect(await ask(s.port, "registry.example.org")).toMatchObject({ rcode: RCODE.SERVFAIL });
  });

  it("tells a member only its own group's names when scoping by source, and no one it does not accept", async () => {
    const s = await server({ scope: true, accepts: (source) => source !== "127.0.0.9" });
    s.serveGroup("a", { one: "127.0.0.2" });
    s.serveGroup("b", { two: "127.0.0.3" });
    expect(await ask(s.port, "one.a.troupe.internal", 1, "127.0.0.2")).toMatchObject({ addresses: ["127.0.0.2"] });
    expect(await ask(s.port, "two.b.troupe.internal", 1, "127.0.0.2")).toMatchObject({ rcode: RCODE.NXDOMAIN });
    expect(await ask(s.port, "two.b.troupe.internal", 1, "127.0.0.3")).toMatchObject({ addresses: ["127.0.0.3"] });
    expect(await ask(s.port, "one.a.troupe.internal", 1, "127.0.0.9")).toBeUndefined();
  });

  it("answers over TCP as over UDP, and malformed queries with FORMERR", async () => {
    const s = await server({});
    s.serveGroup("g", { t: "10.0.0.5" });
    const message = query(7, "t.g.troupe.internal");
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(s.port, "127.0.0.1");
      let got = Buffer.alloc(0);
      socket.on("error", reject);
      socket.on("connect", () => socket.write(Buffer.concat([Buffer.from([0, message.length]), message])));
      socket.on("data", (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
          socket.destroy();
          resolve(got.subarray(2));
        }
      });
    });
    expect(readAnswer(answer)).toEqual({ id: 7, rcode: RCODE.NOERROR, addresses: ["10.0.0.5"] });
    // A label pointer in the question (nothing to point to): FORMERR, with the query's id.
    const bad = Buffer.from(query(9, "x.y"));
    bad[12] = 0xc0;
    const socket = createSocket("udp4");
    const formerr = await new Promise<ReturnType<typeof readAnswer>>((resolve) => {
      socket.on("message", (m) => resolve(readAnswer(m)));
      socket.send(bad, s.port, "127.0.0.1");
    });
    socket.close();
    expect(formerr).toMatchObject({ id: 9, rcode: RCODE.FORMERR });
  });
});

describe("member names and resolver files", () => {
  it("are one DNS label per name, as troupe compares names, 63 characters at most", () => {
    expect(memberName("Train_Group", "Worker_1")).toBe("worker-1.train-group.troupe.internal");
    const long = `a${"b".repeat(63)}`;
    expect(nameLabel(long)).toHaveLength(63);
    expect(nameLabel(long)).not.toBe(nameLabel(`a${"b".repeat(62)}c`));
    expect(groupDomain("g")).toBe("g.troupe.internal");
  });

  it("a member's resolv.conf asks troupe's server, searching its group's domain before the host's, with the host's options", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-resolv-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "resolv.conf");
    writeFileSync(file, "nameserver 10.255.255.53\nsearch corp.example lab.example\noptions edns0 timeout:2\n");
    const host = hostResolverConfig(file);
    expect(host).toEqual({ nameservers: ["10.255.255.53"], search: ["corp.example", "lab.example"], options: ["edns0", "timeout:2"] });
    const launch = { groupName: "Pair" } as Parameters<typeof resolvConfText>[0];
    expect(resolvConfText(launch, "10.213.4.1", host)).toBe(
      "nameserver 10.213.4.1\nsearch pair.troupe.internal corp.example lab.example\noptions edns0 timeout:2\n",
    );
  });
});
