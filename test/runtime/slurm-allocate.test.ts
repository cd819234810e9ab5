/**
 * slurm-commands.ts `allocate`: how troupe reads an interactive allocation's job id from what salloc says, and
 * what it says when salloc ends without one. Real processes in place of salloc (small scripts that print what
 * salloc prints, as Slurm 22.05's does): the test cluster's salloc refuses nothing that troupe's plan would not
 * refuse first, so its refusals cannot be had from it (test/slurm/run.test.ts runs the real one).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { allocate, SlurmCommandError } from "../../src/runtime/slurm/slurm-commands.js";

const dir = mkdtempSync(join(tmpdir(), "troupe-allocate-"));
/** The stand-ins that go on after their id was read (salloc would, its command running): ended at the end. */
const lingering: string[] = [];
afterAll(() => {
  for (const name of lingering) {
    try {
      process.kill(Number(readFileSync(join(dir, `${name}.pid`), "utf8")), "SIGKILL");
    } catch {
      // Ended already.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in for salloc: `body` in a script; the allocation's command (the last two words) as salloc would get them. */
function fakeSalloc(name: string, body: string): string[] {
  const path = join(dir, name);
  if (body.includes("sleep")) lingering.push(name);
  writeFileSync(path, `#!/bin/sh\necho $$ > ${join(dir, `${name}.pid`)}\n${body}\n`);
  chmodSync(path, 0o755);
  return [path, "--job-name=troupe-r-g", "/bin/bash", join(dir, "script.sh")];
}

describe("allocate: salloc's job id", () => {
  it("is read from 'Granted job allocation N' while salloc goes on (its command runs), its output kept in the file", async () => {
    const output = join(dir, "granted.out");
    const id = await allocate(process.env, fakeSalloc("granted", 'echo "salloc: Granted job allocation 4242" >&2; exec sleep 30'), output);
    expect(id).toBe("4242");
    expect(readFileSync(output, "utf8")).toContain("Granted job allocation 4242");
  });

  it("is read from 'Pending job allocation N' at once, before any wait for resources", async () => {
    const started = Date.now();
    const argv = fakeSalloc(
      "pending",
      'echo "salloc: Pending job allocation 77" >&2; echo "salloc: job 77 queued and waiting for resources" >&2; exec sleep 30',
    );
    expect(await allocate(process.env, argv, join(dir, "pending.out"))).toBe("77");
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("a salloc that ends without one fails with what it said, naming the request", async () => {
    const argv = fakeSalloc(
      "refused",
      'echo "salloc: error: Job submit/allocate failed: Invalid account or account/partition combination specified" >&2; exit 1',
    );
    const error = await allocate(process.env, argv, join(dir, "refused.out")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmCommandError);
    expect((error as Error).message).toContain("--job-name=troupe-r-g");
    expect((error as Error).message).toContain("Invalid account or account/partition combination specified");
  });

  it("a salloc that cannot start (not installed) fails saying so", async () => {
    const argv = [join(dir, "no-such-salloc"), "/bin/bash", "x"];
    const error = await allocate(process.env, argv, join(dir, "missing.out")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmCommandError);
    expect((error as Error).message).toMatch(/ENOENT/);
  });
});
