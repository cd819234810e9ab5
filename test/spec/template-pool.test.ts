// Templates render in a pool, each bounded from when its own render starts
// (issue 11): one user's template bomb fails only its own validation, however
// many other templates are waiting.
import { describe, expect, it } from "vitest";
import { DEFAULT_RENDER_LIMITS, loadWorkflowSpec } from "../../src/spec/index.js";

const bomb = `workflow:
  name: bomb
  tasks:
{% for i in range(100000000) %}
  - {name: t{{ i }}, image: alpine, command: [run]}
{% endfor %}
`;

const legitimate = (n: number) => `default-values:
  n: ${n}
workflow:
  name: fan-{{ n }}
  tasks:
{% for i in range(n) %}
  - {name: t{{ i }}, image: alpine, command: [echo, "{{ i }}"]}
{% endfor %}
`;

describe("template rendering pool", () => {
  it("bombs fail with E_TEMPLATE_TIMEOUT, the legitimate templates queued behind them render", async () => {
    const started = performance.now();
    // More bombs than workers, sent first: the others wait behind them.
    const bombs = Array.from({ length: 6 }, () => loadWorkflowSpec(bomb));
    const others = Array.from({ length: 10 }, (_, i) => loadWorkflowSpec(legitimate(i + 1)));
    const [bombResults, otherResults] = await Promise.all([Promise.all(bombs), Promise.all(others)]);
    for (const result of bombResults) {
      expect(result.ok).toBe(false);
      expect(result.diagnostics.map((d) => d.code)).toEqual(["E_TEMPLATE_TIMEOUT"]);
      expect(result.diagnostics[0]).toMatchObject({ line: 4, column: 1 });
    }
    otherResults.forEach((result, i) => {
      expect(result.diagnostics).toEqual([]);
      expect(result.spec?.workflow.tasks).toHaveLength(i + 1);
    });
    // Each bomb ran its own timeout, in parallel where there are workers for it: even one after another, with a
    // busy machine's start of each worker, well under three times their timeouts end to end (a bomb that ran on
    // past its timeout would not end at all).
    expect(performance.now() - started).toBeLessThan(3 * bombs.length * DEFAULT_RENDER_LIMITS.timeoutMs);
  }, 60_000);
});
