/**
 * troupe's name server for its members' names (`TASK.GROUP.troupe.internal`,
 * member-names.ts), on an address of this machine they reach, port 53, UDP
 * and TCP: for a host run (host/run-names.ts: the run bridge's gateway in
 * netns mode, a loopback address of its own when members share the host's
 * network) and for a container group on podman's CLI (container/
 * group-names.ts: its network's gateway). It answers a group's names from
 * the moment the group has addresses until it gives them back, and passes
 * every other query on, as it came, to the host's own resolvers (a member in
 * a network namespace cannot reach a resolver on the host's loopback, such
 * as systemd-resolved's).
 *
 * Bounded: only queries from the members are answered (`accepts`: a subnet,
 * or loopback), a member asking about its own group's names only where its
 * address says which group it is in (`scopeBySource`); at most MAX_FORWARDS
 * queries are passed on at once, MAX_TCP connections kept, each closed when
 * idle. It closes with the run (or the group's network).
 */
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect, createServer, isIP, type Server, type Socket as TcpSocket } from "node:net";
import { tolerated } from "../util/log.js";
import { groupDomain, MEMBER_DOMAIN, memberName } from "./member-names.js";
import { CLASS_ANY, CLASS_IN, RCODE, readQuestion, reply, TYPE_A, TYPE_ANY, type Question } from "./dns-wire.js";

const MAX_FORWARDS = 256;
const MAX_TCP = 64;
const FORWARD_TIMEOUT_MS = 3_000;
const TCP_IDLE_MS = 10_000;
const TCP_MESSAGE_MAX = 65_535;

export interface Upstream {
  address: string;
  port: number;
}

export interface NameServerOptions {
  /** Where it listens (an address of this machine). */
  address: string;
  /** 53 unless a test says otherwise. */
  port?: number;
  /** Whether a query from this address is answered at all. */
  accepts(source: string): boolean;
  /** A member's address says its group: it is told only that group's names (netns mode). */
  scopeBySource: boolean;
  /** Where other names are asked: the host's resolvers (/etc/resolv.conf) by default. */
  upstream?: Upstream[];
}

interface Record {
  address: string;
  group: string;
}

export class MemberNameServer {
  /** Full name (lower case) -> its member's address and group. */
  private readonly records = new Map<string, Record>();
  /** Member address -> its group's domain (for scopeBySource). */
  private readonly groupOf = new Map<string, string>();
  private forwards = 0;
  private closed: Promise<void> | undefined;
  private readonly tcpClients = new Set<TcpSocket>();
  private readonly upstream: Upstream[];

  private constructor(
    private readonly options: NameServerOptions,
    private readonly udp: Socket,
    private readonly tcp: Server,
  ) {
    this.upstream = options.upstream ?? hostResolvers();
    udp.on("message", (message, from) => {
      if (!options.accepts(from.address)) return;
      void this.respond(message, from.address, "udp").then((out) => out && udp.send(out, from.port, from.address));
    });
    tcp.on("connection", (socket) => this.serveTcp(socket));
  }

  /** Listens on `options.address` (UDP and TCP); rejects with the reason (the port is taken, or needs privileges). */
  static async start(options: NameServerOptions): Promise<MemberNameServer> {
    const port = options.port ?? 53;
    const udp = createSocket({ type: isIP(options.address) === 6 ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind({ address: options.address, port, exclusive: true }, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    udp.on("error", () => undefined); // a send to a member that is gone
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host: options.address, port: udp.address().port, exclusive: true }, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      udp.close();
      throw error;
    }
    tcp.maxConnections = MAX_TCP;
    return new MemberNameServer(options, udp, tcp);
  }

  get port(): number {
    return this.udp.address().port;
  }

  /** A group's names (its members by task name, with their addresses), answered from now on. */
  serveGroup(groupName: string, hosts: { readonly [task: string]: string }): void {
    const domain = groupDomain(groupName);
    for (const [task, address] of Object.entries(hosts)) {
      this.records.set(memberName(groupName, task), { address, group: domain });
      this.groupOf.set(address, domain);
    }
  }

  /** Forget the names of these addresses (their group has given them back). */
  forget(addresses: readonly string[]): void {
    const gone = new Set(addresses);
    for (const [name, record] of this.records) if (gone.has(record.address)) this.records.delete(name);
    for (const address of addresses) this.groupOf.delete(address);
  }

  /** Stops answering; once (again: the same end). */
  close(): Promise<void> {
    this.closed ??= new Promise((resolve) => {
      for (const socket of this.tcpClients) socket.destroy();
      this.udp.close();
      this.tcp.close(() => resolve());
    });
    return this.closed;
  }

  /** The reply to one query, or undefined when none is due. */
  private async respond(message: Buffer, source: string, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    const question = readQuestion(message);
    if (question === undefined) return undefined;
    if ("error" in question) return reply(message, question, question.error);
    const name = question.name;
    if (name === MEMBER_DOMAIN || name.endsWith(`.${MEMBER_DOMAIN}`)) return this.own(message, question, source);
    return this.forward(message, question, transport);
  }

  /** A name under troupe.internal: troupe's to answer, never passed on. */
  private own(message: Buffer, question: Question, source: string): Buffer {
    const record = this.records.get(question.name);
    const visible = record && (!this.options.scopeBySource || this.groupOf.get(source) === record.group);
    if (!visible) return reply(message, question, RCODE.NXDOMAIN);
    if (question.class !== CLASS_IN && question.class !== CLASS_ANY) return reply(message, question, RCODE.NOERROR);
    // The name exists; for another type (AAAA, say) it has no record: NOERROR with none, not NXDOMAIN.
    const addresses = question.type === TYPE_A || question.type === TYPE_ANY ? [record.address] : [];
    return reply(message, question, RCODE.NOERROR, addresses);
  }

  private async forward(message: Buffer, question: Question, transport: "udp" | "tcp"): Promise<Buffer> {
    if (this.upstream.length === 0 || this.forwards >= MAX_FORWARDS) return reply(message, question, RCODE.SERVFAIL);
    this.forwards++;
    try {
      for (const upstream of this.upstream) {
        // The next resolver is asked; the member gets SERVFAIL when none answers.
        const answer = await (transport === "udp" ? askUdp : askTcp)(upstream, message).catch(
          tolerated("a resolver did not answer a member's query", { resolver: `${upstream.address}:${upstream.port}`, transport }),
        );
        if (answer && answer.length >= 12 && answer.readUInt16BE(0) === question.id) return answer;
      }
      return reply(message, question, RCODE.SERVFAIL);
    } finally {
      this.forwards--;
    }
  }

  private serveTcp(socket: TcpSocket): void {
    if (!this.options.accepts(socket.remoteAddress ?? "")) {
      socket.destroy();
      return;
    }
    this.tcpClients.add(socket);
    socket.on("close", () => this.tcpClients.delete(socket));
    // A client that resets its connection (a member ending): it is closed, and nothing else is owed to it.
    socket.on("error", () => undefined);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    let pending = Buffer.alloc(0);
    let busy = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const size = pending.readUInt16BE(0);
        const message = pending.subarray(2, 2 + size);
        pending = pending.subarray(2 + size);
        // In order, one at a time: a client pipelining queries gets its answers as it asked.
        busy = busy.then(async () => {
          const out = await this.respond(message, socket.remoteAddress ?? "", "tcp");
          if (out && !socket.destroyed) socket.write(Buffer.concat([lengthPrefix(out.length), out]));
        });
      }
      if (pending.length > 2 + TCP_MESSAGE_MAX) socket.destroy();
    });
  }
}

function lengthPrefix(size: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(size);
  return out;
}

/** One query to one resolver over UDP, from a socket of its own (a random port: answers cannot be guessed at). */
export function askUdp(upstream: Upstream, message: Buffer, timeoutMs = FORWARD_TIMEOUT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(upstream.address) === 6 ? "udp6" : "udp4");
    const timer = setTimeout(() => done(new Error("no answer")), timeoutMs);
    let settled = false;
    const done = (error?: Error, answer?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (answer) resolve(answer);
      else reject(error ?? new Error("no answer"));
    };
    socket.on("error", (error) => done(error));
    socket.on("message", (answer, from) => {
      // Only the resolver asked, with the query's id.
      if (from.address === upstream.address && answer.length >= 2 && answer.readUInt16BE(0) === message.readUInt16BE(0))
        done(undefined, answer);
    });
    socket.send(message, upstream.port, upstream.address);
  });
}

/** One query over TCP (a client that asks over TCP had a truncated UDP answer: the whole one comes this way). */
function askTcp(upstream: Upstream, message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: upstream.address, port: upstream.port });
    let received = Buffer.alloc(0);
    socket.setTimeout(FORWARD_TIMEOUT_MS, () => socket.destroy(new Error("no answer")));
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed without an answer")));
    socket.on("connect", () => socket.write(Buffer.concat([lengthPrefix(message.length), message])));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        resolve(received.subarray(2, 2 + received.readUInt16BE(0)));
        socket.destroy();
      }
    });
  });
}

/** The host's resolvers, as its /etc/resolv.conf names them (IPv4 and IPv6, no scope ids). */
export function hostResolvers(path = "/etc/resolv.conf"): Upstream[] {
  return hostResolverConfig(path)
    .nameservers.filter((address) => isIP(address) !== 0)
    .map((address) => ({ address, port: 53 }));
}

/** What a member's resolv.conf keeps of the host's: its search domains and options (nameservers are troupe's). */
export function hostResolverConfig(path = "/etc/resolv.conf"): { nameservers: string[]; search: string[]; options: string[] } {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    // No resolv.conf: no resolvers to pass other names on to.
  }
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const line of text.split("\n")) {
    const [key, ...values] = line.trim().split(/\s+/);
    if (key === "nameserver" && values[0] !== undefined) out.nameservers.push(values[0]);
    else if (key === "search" || key === "domain") out.search = values;
    else if (key === "options") out.options.push(...values);
  }
  return out;
}
