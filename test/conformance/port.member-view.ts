/**
 * The conformance cases about what a member is given (TaskLaunch): its
 * environment, its files, its inputs (read-only), its output directory, and
 * its output passed live to the run's sink (RunContext.onOutput), the
 * launch's secrets masked in its log and live output.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { PoolBackend } from "../../src/port/index.js";
import { readAll, sh } from "./group-probe.js";
import { skipWhereCannot, type ConformanceTarget, type OpenRun, type SkipUnless } from "./target.js";

export function describeMemberView(pool: () => PoolBackend, openRun: OpenRun, target: ConformanceTarget, skipUnless: SkipUnless): void {
  it("gives a member its environment, its files, its inputs read-only and its output directory to write", async (ctx) => {
    skipWhereCannot(skipUnless, ctx, target, "files");
    skipWhereCannot(skipUnless, ctx, target, "commands");
    const { run, group } = await openRun();
    const input = join(run.dataDir, "outputs", "upstream");
    mkdirSync(input, { recursive: true, mode: 0o755 });
    writeFileSync(join(input, "data.txt"), "from upstream\n");
    chmodSync(join(input, "data.txt"), 0o644);
    const g = group("view", ["viewer"]);
    const [key] = g.place();
    await g.placedAll([key!]);
    const look = sh(
      ({ output }) =>
        `echo "env=$CONFORMANCE_GREETING"; cat /opt/troupe-conformance/config.txt; cat ${input}/data.txt
if touch ${input}/written 2>/dev/null; then echo input-writable; else echo input-read-only; fi
echo result > ${output}/result.txt && echo output-written`,
    );
    const launch = g.launch("viewer", look, 0, {
      env: { CONFORMANCE_GREETING: "hello there" },
      files: [{ path: "/opt/troupe-conformance/config.txt", contents: Buffer.from("a file of its own\n") }],
      inputDirs: [input],
    });
    g.handle.prepare(launch);
    await g.readyAll([key!]);
    await g.handle.release([key!]);
    expect(await g.exit(key!)).toEqual({ kind: "exited", code: 0 });
    expect((await readAll(g.handle.logs(key!))).text).toBe(
      "env=hello there\na file of its own\nfrom upstream\ninput-read-only\noutput-written\n",
    );
    expect(existsSync(join(input, "written"))).toBe(false);
    if (pool().capabilities.sharedFileSystem) expect(readFileSync(join(launch.outputDir, "result.txt"), "utf8")).toBe("result\n");
  });

  it("passes a member's output to the run's live sink as it comes, all of it, by its launch", async (ctx) => {
    skipWhereCannot(skipUnless, ctx, target, "commands");
    const live = new Map<string, string>();
    const { group } = await openRun({ onOutput: (launch, chunk) => live.set(launch.key, (live.get(launch.key) ?? "") + chunk.toString()) });
    const g = group("live", ["talker", "quiet"]);
    const [talker, quiet] = await g.started({
      talker: sh("for i in 1 2 3; do echo line-$i; sleep 0.2; done; echo err >&2"),
      quiet: sh("exit 0"),
    });
    await g.exit(talker!);
    await g.exit(quiet!);
    const log = (await readAll(g.handle.logs(talker!))).text;
    expect(log).toBe("line-1\nline-2\nline-3\nerr\n");
    expect(live.get(talker!)).toBe(log);
    expect(live.get(quiet!) ?? "").toBe("");
  });

  it("masks the launch's secrets in its log and its live output, one written in two pieces a moment apart too", async (ctx) => {
    // Streams of a pool without local logs are masked where the engine copies them (engine/log-copy.ts).
    skipUnless(ctx, pool().capabilities.localLogs, "its logs are streams the engine copies and masks");
    const secret = "conformance-SECRET-5f3e9a";
    const live = new Map<string, string>();
    const { group } = await openRun({ onOutput: (launch, chunk) => live.set(launch.key, (live.get(launch.key) ?? "") + chunk.toString()) });
    const g = group("masked", ["teller"]);
    const [key] = g.place();
    await g.placedAll([key!]);
    const tell = sh(
      `echo "env=$CONFORMANCE_SECRET"; printf 'split=${secret.slice(0, 12)}'; sleep 0.3; printf '${secret.slice(12)} short=abc\\n'`,
    );
    const launch = g.launch("teller", tell, 0, { env: { CONFORMANCE_SECRET: secret }, secrets: [secret, "abc"] });
    g.handle.prepare(launch);
    await g.readyAll([key!]);
    await g.handle.release([key!]);
    expect(await g.exit(key!)).toEqual({ kind: "exited", code: 0 });
    const expected = "env=[MASKED]\nsplit=[MASKED] short=abc\n";
    expect((await readAll(g.handle.logs(key!))).text).toBe(expected);
    expect(readFileSync(launch.logPath, "utf8")).toBe(expected);
    expect(live.get(key!)).toBe(expected);
  });
}
