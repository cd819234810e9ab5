/**
 * The Slurm member helpers' maskers (runtime/slurm/member-masker.mjs, and troupe-slurm-helper's
 * native/slurm-helper-masker.c), copies of util/secret-mask.ts's because the helpers run alone on a node:
 * held to the same results as the original, on the same inputs, cut at every place, with overlapping and
 * short secrets. The C masker runs in a small driver compiled here (test/runtime/fixtures/slurm-masker-driver.c).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretMasker } from "../../src/util/secret-mask.js";
import { secretMasker } from "../../src/runtime/slurm/member-masker.mjs";

interface Masker {
  push(chunk: Buffer): Buffer;
  end(): Buffer;
}

function through(masker: Masker, pieces: string[]): string {
  const out = pieces.map((piece) => masker.push(Buffer.from(piece)));
  out.push(masker.end());
  return Buffer.concat(out).toString();
}

const cases: Array<{ secrets: string[]; text: string }> = [
  { secrets: ["sk-live-0123456789abcdef"], text: "token=sk-live-0123456789abcdef; again: sk-live-0123456789abcdef.\n" },
  { secrets: ["abcdefgh", "efghijklmnop"], text: "x abcdefghijklmnop y abcdefgh z efghijklmnop\n" },
  { secrets: ["short", "pässwörter-ünd-mehr"], text: "short pässwörter-ünd-mehr done\n" },
  { secrets: ["aaaaaaaaab"], text: "aaaaaaaaaaaaaaaaaab aaaaaaaaa\n" },
];

describe("the Slurm helper's masker", () => {
  it("masks as util/secret-mask.ts does, however the stream is cut", () => {
    for (const { secrets, text } of cases) {
      const bytes = Buffer.from(text);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const pieces = [bytes.subarray(0, cut).toString("latin1"), bytes.subarray(cut).toString("latin1")];
        const asBytes = (masker: Masker) =>
          Buffer.concat([...pieces.map((p) => masker.push(Buffer.from(p, "latin1"))), masker.end()]).toString();
        expect(asBytes(secretMasker(secrets) as Masker), `${text} cut at ${cut}`).toBe(asBytes(new SecretMasker(secrets)));
      }
      expect(through(secretMasker(secrets) as Masker, [...text])).toBe(through(new SecretMasker(secrets), [...text]));
    }
    expect(through(secretMasker(["sk-live-0123456789abcdef"]) as Masker, [cases[0]!.text])).toBe("token=[MASKED]; again: [MASKED].\n");
  });
});

/** Each case's text in two pieces cut at every byte, and in pieces of one character. */
function cutsOf(text: string): Buffer[][] {
  const bytes = Buffer.from(text);
  const cuts: Buffer[][] = [];
  for (let cut = 0; cut <= bytes.length; cut++) cuts.push([bytes.subarray(0, cut), bytes.subarray(cut)]);
  cuts.push([...text].map((c) => Buffer.from(c)));
  return cuts;
}

describe("troupe-slurm-helper's masker (C)", () => {
  let dir: string;
  let driver: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "troupe-c-masker-"));
    driver = join(dir, "driver");
    const root = new URL("../../", import.meta.url).pathname;
    const sources = ["test/runtime/fixtures/slurm-masker-driver.c", "native/slurm-helper-masker.c"].map((s) => join(root, s));
    const built = spawnSync(process.env.CC ?? "cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", driver, ...sources], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Every stream through the C masker in one run of the driver: what came out of each. */
  function throughC(streams: Array<{ secrets: string[]; pieces: Buffer[] }>): string[] {
    const hex = (b: Buffer) => (b.length ? b.toString("hex") : "-");
    const input = streams.flatMap(({ secrets, pieces }) => [
      `N ${secrets.map((s) => hex(Buffer.from(s))).join(" ")}`,
      ...pieces.map((p) => `P ${hex(p)}`),
      "E",
    ]);
    const run = spawnSync(driver, { input: `${input.join("\n")}\n`, encoding: "utf8", maxBuffer: 1 << 26 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    return streams.map(({ pieces }) =>
      Buffer.concat(lines.splice(0, pieces.length + 1).map((line) => Buffer.from(line, "hex"))).toString(),
    );
  }

  it("masks as util/secret-mask.ts does, however the stream is cut", () => {
    const streams = cases.flatMap(({ secrets, text }) => cutsOf(text).map((pieces) => ({ secrets, pieces })));
    const expected = streams.map(({ secrets, pieces }) => {
      const masker = new SecretMasker(secrets);
      return Buffer.concat([...pieces.map((p) => masker.push(p)), masker.end()]).toString();
    });
    expect(throughC(streams)).toEqual(expected);
    expect(throughC([{ secrets: ["sk-live-0123456789abcdef"], pieces: [Buffer.from(cases[0]!.text)] }])).toEqual([
      "token=[MASKED]; again: [MASKED].\n",
    ]);
    // No secrets of eight characters or more: the output as it came.
    expect(throughC([{ secrets: ["short"], pieces: [Buffer.from("a short one")] }])).toEqual(["a short one"]);
  });
});
