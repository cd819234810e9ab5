/**
 * `inputs: - task: WORKFLOW_ID:TASK`: the output of a task of another
 * workflow, as OSMO has it. `troupe run` finds it in this home's history; a
 * server only in the submitting user's own workflows (another user's is as
 * good as absent). Real runs, a real server on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type StartedServer } from "../server/helpers.js";
import { describeRun, ensureBuilt, runJson, TestHome, troupe } from "./helpers.js";

let home: TestHome;
beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);
afterAll(() => home?.remove());

const PRODUCER = `workflow:
  name: producer
  tasks:
  - name: make
    image: alpine:3.18
    command: [sh, -c, "echo made-once > {{output}}/model.txt"]
  - name: broken
    image: alpine:3.18
    command: [sh, -c, "exit 3"]
`;
const consumer = (ref: string) => `workflow:
  name: consumer
  tasks:
  - name: use
    image: alpine:3.18
    command: [sh, -c, "cat {{input:0}}/model.txt"]
    inputs:
    - task: ${ref}
`;

describe("inputs from another workflow, with troupe run", () => {
  it("reads the output of a completed task of a run in this home's history; refuses one that is not there, naming it", async () => {
    const producer = await runJson(home.spec("producer", PRODUCER), { home: home.home, target: "netns" });
    expect(producer.code).toBe(1); // `broken` failed; `make` completed
    const id = producer.record.id;
    const used = await runJson(home.spec("consumer", consumer(`${id}:make`)), { home: home.home, target: "netns" });
    expect(used.code, describeRun(used)).toBe(0);
    expect(home.log(used.record.id, "use")).toBe("made-once\n");

    for (const [ref, why] of [
      [`${id}:broken`, `task broken of ${id} is FAILED, not COMPLETED`],
      [`${id}:absent`, `workflow ${id} has no task absent`],
      ["no-such-run-1:make", "there is no workflow no-such-run-1 of yours"],
    ] as const) {
      const refused = await troupe(["run", home.spec("consumer", consumer(ref)), "--runtime", "host"], { home: home.home });
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(`error E_INPUT_UNAVAILABLE: task use's input ${ref}: ${why}`);
    }
  });
});

describe("inputs from another workflow, on a server", () => {
  let server: StartedServer;
  const env: Record<string, Record<string, string>> = {};
  beforeAll(async () => {
    const serverHome = home.outsideTmp();
    for (const user of ["alice", "bob"]) {
      const created = await troupe(["server", "token", "create", user, "--home", serverHome], { home: home.home });
      expect(created.code, created.stderr).toBe(0);
      env[user] = { TROUPE_TOKEN: created.stdout.trim(), XDG_CONFIG_HOME: home.outsideTmp() };
    }
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
    for (const user of ["alice", "bob"]) env[user]!.TROUPE_SERVER = server.url;
  }, 200_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("takes the submitter's own workflow's output; another user's is refused as absent", async () => {
    const submit = (user: string, name: string, text: string) =>
      troupe(["workflow", "submit", home.spec(name, text), "--wait"], { home: home.home, env: env[user], timeoutMs: 60_000 });
    const made = await submit("alice", "producer", PRODUCER);
    const id = /submitted (\S+)/.exec(made.stdout + made.stderr)?.[1];
    expect(id, made.stdout + made.stderr).toBeDefined();

    const alice = await submit("alice", "consumer", consumer(`${id}:make`));
    expect(alice.code, alice.stdout + alice.stderr).toBe(0);
    expect(alice.stdout).toContain("made-once");

    const bob = await submit("bob", "consumer", consumer(`${id}:make`));
    expect(bob.code).not.toBe(0);
    expect(bob.stderr).toContain(`task use's input ${id}:make: there is no workflow ${id} of yours`);
  });
});
