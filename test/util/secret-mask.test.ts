/**
 * The streaming masker of secret values (util/secret-mask.ts): every
 * occurrence masked, however the stream is cut, values under 8 characters
 * left alone, the carry holding back no more than it must.
 */
import { describe, expect, it } from "vitest";
import { MASK, SecretMasker, hasMaskable, maskText } from "../../src/util/secret-mask.js";

const SECRET = "sk-live-0123456789abcdef";

/** The stream pushed through a masker in the given pieces, and its end. */
function masked(secrets: string[], pieces: Array<string | Buffer>): string {
  const masker = new SecretMasker(secrets);
  const out = pieces.map((piece) => masker.push(Buffer.from(piece)));
  out.push(masker.end());
  return Buffer.concat(out).toString();
}

describe("SecretMasker", () => {
  it("masks every occurrence in one chunk", () => {
    expect(masked([SECRET], [`a ${SECRET} b ${SECRET}${SECRET}\n`])).toBe(`a ${MASK} b ${MASK}${MASK}\n`);
  });

  it("masks a secret cut at every possible place between two chunks, and between many", () => {
    const text = `token=${SECRET}; again: ${SECRET}.\n`;
    for (let cut = 0; cut <= text.length; cut++)
      expect(masked([SECRET], [text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toBe(`token=${MASK}; again: ${MASK}.\n`);
    expect(masked([SECRET], [...text])).toBe(`token=${MASK}; again: ${MASK}.\n`);
  });

  it("masks a secret cut inside a multi-byte character, and secrets with such characters", () => {
    const secret = "pässwörd-ünïcode";
    const bytes = Buffer.from(`x${secret}y`);
    for (let cut = 0; cut <= bytes.length; cut++) expect(masked([secret], [bytes.subarray(0, cut), bytes.subarray(cut)])).toBe(`x${MASK}y`);
  });

  it("leaves values under 8 characters alone (OSMO's rule)", () => {
    expect(masked(["short", "1234567"], ["short 1234567 12345678"])).toBe("short 1234567 12345678");
    expect(hasMaskable(["short"])).toBe(false);
    expect(hasMaskable(["12345678"])).toBe(true);
    expect(masked(["12345678"], ["a12345678b"])).toBe(`a${MASK}b`);
  });

  it("masks the longer of two secrets that start at the same place, and overlapping ones as one stretch", () => {
    expect(masked(["abcdefgh", "abcdefghijkl"], ["<abcdefghijkl>"])).toBe(`<${MASK}>`);
    expect(masked(["abcdefgh", "efghijklmnop"], ["abcdefghijklmnop!"])).toBe(`${MASK}!`);
  });

  it("holds back only an end that could begin a secret: a line comes out at once", () => {
    const masker = new SecretMasker([SECRET]);
    expect(masker.push(Buffer.from("hello world, this line is complete\n")).toString()).toBe("hello world, this line is complete\n");
    expect(masker.push(Buffer.from("token: sk-live-01")).toString()).toBe("token: ");
    expect(masker.push(Buffer.from("x\n")).toString()).toBe("sk-live-01x\n");
    expect(masker.push(Buffer.from("again sk-")).toString()).toBe("again ");
    expect(masker.end().toString()).toBe("sk-");
  });

  it("holds back a whole shorter secret that may be the start of a longer one", () => {
    const masker = new SecretMasker(["password1", "password123456"]);
    expect(masker.push(Buffer.from("pw=password1")).toString()).toBe("pw=");
    expect(masker.push(Buffer.from("23456 and password1!")).toString()).toBe(`${MASK} and ${MASK}!`);
    expect(masker.end().length).toBe(0);
  });

  it("passes chunks through unchanged with no secret to mask", () => {
    const masker = new SecretMasker(["short"]);
    const chunk = Buffer.from("anything at all");
    expect(masker.active).toBe(false);
    expect(masker.push(chunk)).toBe(chunk);
    expect(masker.end().length).toBe(0);
  });

  it("maskText masks whole strings", () => {
    expect(maskText(`error: ${SECRET} refused`, [SECRET, "short"])).toBe(`error: ${MASK} refused`);
  });
});
