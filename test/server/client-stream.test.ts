/**
 * The stream behind the client's live view follows a run without a timer:
 * the API (real Fastify on loopback, real SQLite) with its backstop timer set
 * far beyond the test, so that every line must come from a notification — a
 * commit of the run's records (RunChanges, as the HTTP thread is told) or
 * inotify on its log directory. An attempt's log is sent whole before the
 * transition that ends it; the stream ends with the run.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/server/app.js";
import { RunChanges } from "../../src/server/run-changes.js";
import type { RunControl } from "../../src/server/run-manager.js";
import { RunStore, type Subject } from "../../src/store/index.js";

let home: string;
let store: RunStore;
let app: FastifyInstance;
let url: string;
let token: string;
const changes = new RunChanges();

/** The stream is read from the store and the log files alone: nothing is asked of a run manager. */
const noManager: RunControl = {
  submit: () => Promise.reject(new Error("not in this test")),
  restart: () => Promise.reject(new Error("not in this test")),
  cancel: () => false,
};

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-stream-"));
  store = RunStore.open(home);
  token = store.tokens.create("alice", false);
  app = await buildApp({ store, manager: noManager, changes, streamBackstopMs: 10 * 60_000 });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await app?.close();
  store?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

/** The stream's lines as they come, and a way to wait for the next ones. */
async function openStream(id: string) {
  const response = await fetch(`${url}/api/workflow/${id}/stream?follow=true`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  const lines: Array<Record<string, unknown>> = [];
  let ended = false;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of response.body!) {
      const parts = (rest + decoder.decode(chunk as Uint8Array, { stream: true })).split("\n");
      rest = parts.pop()!;
      for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
    }
    ended = true;
  })();
  const until = async (done: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(done(), `${what}: ${JSON.stringify(lines)}`).toBe(true);
  };
  return { lines, until, ended: () => ended, reading };
}

describe("GET /api/workflow/{id}/stream", () => {
  it("is woken by commits and by log writes, sends a log whole before its attempt's end, and ends with the run", async () => {
    const id = store.createRun({
      name: "streamed",
      specText: "",
      runtime: "test",
      submitTime: Date.now(),
      user: "alice",
      groups: [{ name: "g", tasks: [{ name: "t", lead: true }] }],
    });
    const transition = (subject: Subject, from: string, to: string) => {
      store.recordTransition(id, { subject, from, to, reason: `${from} -> ${to}`, time: Date.now() });
    };
    // What the server's main thread does: commit, then tell the HTTP thread which runs changed.
    const commit = () => {
      store.flush();
      changes.notify(id);
    };
    const stream = await openStream(id);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stream.lines).toEqual([]);

    transition({ kind: "run" }, "PENDING", "RUNNING");
    transition({ kind: "task", group: 0, task: 0, retryId: 0 }, "INITIALIZING", "RUNNING");
    store.updateRun(id, { status: "RUNNING" });
    commit();
    await stream.until(() => stream.lines.length === 2, "the committed transitions");
    expect(stream.lines.map((l) => [l.type, l.task, l.to])).toEqual([
      ["event", null, "RUNNING"],
      ["event", "t", "RUNNING"],
    ]);

    const log = path.join(store.runLogDir(id), "t.0.log");
    fs.appendFileSync(log, "first line\n");
    await stream.until(() => stream.lines.length === 3, "the log write (inotify)");
    expect(stream.lines[2]).toEqual({ type: "output", task: "t", retry_id: 0, data: "first line\n" });

    // The last bytes and the end in one go: the log comes first. A character split over two writes arrives whole.
    fs.appendFileSync(log, Buffer.from("é", "utf8").subarray(0, 1));
    fs.appendFileSync(log, Buffer.concat([Buffer.from("é", "utf8").subarray(1), Buffer.from(" last\n")]));
    transition({ kind: "task", group: 0, task: 0, retryId: 0 }, "RUNNING", "COMPLETED");
    transition({ kind: "run" }, "RUNNING", "COMPLETED");
    store.updateRun(id, { status: "COMPLETED" });
    commit();
    await stream.until(stream.ended, "the end");
    await stream.reading;
    const rest = stream.lines.slice(3);
    expect(
      rest
        .filter((l) => l.type === "output")
        .map((l) => l.data)
        .join(""),
    ).toBe("é last\n");
    expect(rest.slice(-3).map((l) => [l.type, l.task ?? null, l.to ?? l.status])).toEqual([
      ["event", "t", "COMPLETED"],
      ["event", null, "COMPLETED"],
      ["end", null, "COMPLETED"],
    ]);
  });
});

describe("RunStoreOptions.onCommit", () => {
  it("names every run a flush wrote anything of, transitions alone too (how the HTTP thread learns whom to wake)", () => {
    const commits: Array<{ updates: number; runs: string[] }> = [];
    const own = RunStore.open(fs.mkdtempSync(path.join(os.tmpdir(), "troupe-commit-")), {
      onCommit: (updates, runs) => commits.push({ updates: updates.length, runs }),
    });
    try {
      const run = () =>
        own.createRun({
          name: "c",
          specText: "",
          runtime: "test",
          submitTime: Date.now(),
          groups: [{ name: "g", tasks: [{ name: "t", lead: true }] }],
        });
      const [a, b] = [run(), run()];
      own.recordTransition(a, { subject: { kind: "run" }, from: "PENDING", to: "RUNNING", reason: "x", time: Date.now() });
      own.updateRun(b, { status: "RUNNING" });
      own.flush();
      expect(commits).toEqual([{ updates: 1, runs: [a, b] }]);
      own.recordTransition(b, { subject: { kind: "run" }, from: "RUNNING", to: "COMPLETED", reason: "x", time: Date.now() });
      own.flush();
      expect(commits[1]).toEqual({ updates: 0, runs: [b] });
    } finally {
      own.close();
    }
  });
});
