/**
 * The Slurm runtime's listener for member helpers, over real TCP on
 * loopback: a connection without the run's token is dropped before anything
 * reaches a member; a helper's hello routes it to its member, with the
 * connection's source address as the member's; a helper that comes before
 * its member is asked for (a restarted troupe's re-attach) waits for it,
 * its messages kept in order.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HelperListener, type HelperLink, type HelperMessage } from "../../src/runtime/slurm/helper-listener.js";

const TOKEN = "secret-of-the-run";
const listeners: HelperListener[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const listener of listeners.splice(0)) await listener.close();
});

async function open(): Promise<HelperListener> {
  const listener = await HelperListener.open("127.0.0.1", TOKEN);
  listeners.push(listener);
  return listener;
}

function helper(listener: HelperListener, lines: object[]): Promise<Socket> {
  const at = listener.address.lastIndexOf(":");
  const socket = connect(Number(listener.address.slice(at + 1)), listener.address.slice(0, at));
  sockets.push(socket);
  return new Promise((resolve) =>
    socket.on("connect", () => {
      socket.write(lines.map((line) => `${JSON.stringify(line)}\n`).join(""));
      resolve(socket);
    }),
  );
}

function recorder() {
  const events: string[] = [];
  const links: HelperLink[] = [];
  return {
    events,
    links,
    handler: {
      connected: (link: HelperLink) => (links.push(link), events.push(`connected ${link.hello.key} ${link.hello.node} ${link.address}`)),
      message: (_link: HelperLink, message: HelperMessage) => events.push(`message ${JSON.stringify(message)}`),
      disconnected: (link: HelperLink) => events.push(`disconnected ${link.hello.key}`),
    },
  };
}

const until = async (what: string, done: () => boolean) => {
  for (const deadline = Date.now() + 5000; !done(); await new Promise((r) => setTimeout(r, 10)))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
};

describe("the helpers' listener", () => {
  it("drops a connection whose hello lacks the run's token; nothing reaches the member", async () => {
    const listener = await open();
    const member = recorder();
    listener.route("g/a/0", member.handler);
    const intruder = await helper(listener, [
      { t: "hello", token: "guess", key: "g/a/0", node: "n9", job: "1" },
      { t: "exit", code: 0 },
    ]);
    await new Promise((resolve) => intruder.on("close", resolve));
    expect(member.events).toEqual([]);
  });

  it("routes a helper to its member by key, its address the connection's, and carries messages both ways", async () => {
    const listener = await open();
    const member = recorder();
    listener.route("g/a/0", member.handler);
    const socket = await helper(listener, [{ t: "hello", token: TOKEN, key: "g/a/0", node: "n2", job: "42" }, { t: "ready" }]);
    await until("ready", () => member.events.length === 2);
    expect(member.events).toEqual(["connected g/a/0 n2 127.0.0.1", 'message {"t":"ready"}']);
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    member.links[0]!.send({ t: "go" });
    await until("go", () => received.includes("\n"));
    expect(JSON.parse(received)).toEqual({ t: "go" });
    socket.end();
    await until("disconnected", () => member.events.length === 3);
    expect(member.events[2]).toBe("disconnected g/a/0");
  });

  it("keeps a helper that comes before its member is asked for, and gives it with its messages once it is", async () => {
    const listener = await open();
    await helper(listener, [
      { t: "hello", token: TOKEN, key: "g/b/0", node: "n3", job: "7", running: true },
      { t: "exit", code: 5 },
    ]);
    await new Promise((r) => setTimeout(r, 200));
    const member = recorder();
    listener.route("g/b/0", member.handler);
    expect(member.events).toEqual(["connected g/b/0 n3 127.0.0.1", 'message {"t":"exit","code":5}']);
    expect(member.links[0]!.hello.running).toBe(true);
  });
});
