/**
 * The Slurm member helper's masker (runtime/slurm/member-masker.mjs), a copy of util/secret-mask.ts's
 * because the helper runs alone on a node: held to the same results as the original, on the same inputs,
 * cut at every place, with overlapping and short secrets.
 */
import { describe, expect, it } from "vitest";
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

describe("the Slurm helper's masker", () => {
  const cases: Array<{ secrets: string[]; text: string }> = [
    { secrets: ["sk-live-0123456789abcdef"], text: "token=sk-live-0123456789abcdef; again: sk-live-0123456789abcdef.\n" },
    { secrets: ["abcdefgh", "efghijklmnop"], text: "x abcdefghijklmnop y abcdefgh z efghijklmnop\n" },
    { secrets: ["short", "pässwörter-ünd-mehr"], text: "short pässwörter-ünd-mehr done\n" },
    { secrets: ["aaaaaaaaab"], text: "aaaaaaaaaaaaaaaaaab aaaaaaaaa\n" },
  ];

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
