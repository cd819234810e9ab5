/** The list's label selectors (OSMO's): exact values, `*` wildcards, `(a|b)` alternatives, each refused with its reason. */
import { describe, expect, it } from "vitest";
import { MAX_SELECTOR_PATTERNS, parseLabelSelector } from "../../src/server/label-selector.js";

describe("parseLabelSelector", () => {
  it.each([
    ["team", { key: "team" }],
    ["team=vision", { key: "team", value: "vision" }],
    ["project=sim_*", { key: "project", patterns: ["sim_*"] }],
    ["project=sim_**", { key: "project", patterns: ["sim_*"] }],
    ["project=(sim_*|hil_*)", { key: "project", patterns: ["sim_*", "hil_*"] }],
    ["team=robotics_(a|b)", { key: "team", patterns: ["robotics_a", "robotics_b"] }],
    ["x=(a|b)-(c|d)", { key: "x", patterns: ["a-c", "a-d", "b-c", "b-d"] }],
    ["x=(a|a)", { key: "x", value: "a" }],
    ["example.com/team=*", { key: "example.com/team", patterns: ["*"] }],
  ])("%s", (text, selector) => {
    expect(parseLabelSelector(text)).toEqual({ ok: true, selector });
  });

  it.each([
    ["team=", /is empty/],
    ["team=(a|", /alternatives are written \(value\|value\)/],
    ["team=a)", /alternatives are written/],
    ["team=a|b", /alternatives are written/],
    ["team=(a)", /at least two non-empty values/],
    ["team=(a||b)", /at least two non-empty values/],
    ["team=((a|b)|c)", /cannot be nested/],
    ["team=a b", /`a b`/],
    ["team=-a", /`-a`/],
    ["bad key=a", /label key `bad key`/],
    ["x=(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)", new RegExp(`expands to 64 patterns; at most ${MAX_SELECTOR_PATTERNS}`)],
  ])("refuses %s", (text, reason) => {
    const result = parseLabelSelector(text);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.reason).toMatch(reason);
  });
});
