/**
 * What tasks' `credentials:` give them (data/task-credentials.ts), decided
 * from a compiled plan and the opened credentials: OSMO's two forms, the
 * run's secrets, and every mistake an error naming the task and the
 * credential (exit 2) before anything runs.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { CREDENTIAL_FILE_MODE, taskCredentials, type OpenedCredential } from "../../src/data/index.js";
import { TroupeError, exitCodeFor } from "../../src/errors/index.js";
import { compileYaml } from "../engine/plan-helpers.js";

const OPENED = new Map<string, OpenedCredential>([
  ["api", { type: "GENERIC", payload: { token: "sk-live-0123456789", user: "bob" } }],
  ["lab", { type: "DATA", payload: { endpoint: "s3://lab", access_key_id: "AKIA0000EXAMPLE", access_key: "wJalrXUtnFEMI/K7MDENG" } }],
]);

function workflow(credentials: string): Promise<import("../../src/plan/index.js").CompiledWorkflow> {
  return compileYaml(`
    workflow:
      name: wf
      tasks:
      - name: worker
        image: alpine:3.18
        command: [env]
        credentials:
${credentials
  .split("\n")
  .map((line) => `          ${line}`)
  .join("\n")}
      - name: other
        image: alpine:3.18
        command: [env]
  `);
}

function refusal(run: () => unknown): TroupeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TroupeError);
    return error as TroupeError;
  }
  throw new Error("not refused");
}

describe("taskCredentials", () => {
  it("sets environment variables from payload keys and writes one 0400 file per key into a directory", async () => {
    const plan = await workflow("api: {API_TOKEN: token, API_USER: user}\nlab: /etc/lab/");
    const given = taskCredentials(plan, OPENED).get("worker")!;
    expect(given.env).toEqual({ API_TOKEN: "sk-live-0123456789", API_USER: "bob" });
    expect(given.files.map((f) => [f.path, f.contents.toString(), f.mode])).toEqual([
      ["/etc/lab/endpoint", "s3://lab", CREDENTIAL_FILE_MODE],
      ["/etc/lab/access_key_id", "AKIA0000EXAMPLE", CREDENTIAL_FILE_MODE],
      ["/etc/lab/access_key", "wJalrXUtnFEMI/K7MDENG", CREDENTIAL_FILE_MODE],
    ]);
    expect(CREDENTIAL_FILE_MODE).toBe(0o400);
    // Every secret value of 8 characters or more of the credentials the run uses: "bob" is too short to mask, a DATA
    // credential's endpoint is no secret (it is in the spec's URLs).
    expect([...given.secrets].sort()).toEqual(["AKIA0000EXAMPLE", "sk-live-0123456789", "wJalrXUtnFEMI/K7MDENG"].sort());
    expect(taskCredentials(plan, OPENED).has("other")).toBe(false);
  });

  it("refuses a credential that does not exist, naming the task and the credential (a usage error)", async () => {
    const plan = await workflow("nope: {X: token}");
    const error = refusal(() => taskCredentials(plan, OPENED));
    expect(error.code).toBe("E_CREDENTIAL_UNKNOWN");
    expect(error.message).toBe("task `worker`: credential `nope` does not exist");
    expect(exitCodeFor(error)).toBe(2);
  });

  it("refuses a payload key the credential does not have, listing those it has", async () => {
    const plan = await workflow("api: {X: password}");
    const refused = refusal(() => taskCredentials(plan, OPENED));
    expect(refused.code).toBe("E_CREDENTIAL_PAYLOAD_KEY");
    expect(refused.message).toBe("task `worker`: credential `api` has no key `password` (for X); its keys: token, user");
  });

  it("refuses an environment variable name that is not one, and a directory that is not absolute", async () => {
    const badName = refusal(() => taskCredentials(compiled.badName!, OPENED));
    expect(badName.code).toBe("E_CREDENTIAL_ENV");
    expect(badName.message).toContain("credential `api`: `1X` is not an environment variable name");
    const relative = refusal(() => taskCredentials(compiled.relative!, OPENED));
    expect(relative.code).toBe("E_CREDENTIAL_PATH");
    expect(relative.message).toBe("task `worker`: credential `api`: `secrets` is not an absolute directory");
  });
});

const compiled: Record<string, import("../../src/plan/index.js").CompiledWorkflow | undefined> = {};
beforeAll(async () => {
  compiled.badName = await workflow('api: {"1X": token}');
  compiled.relative = await workflow("api: secrets");
});
