/**
 * The NAT and forwarding rules that give a run's bridge egress, through
 * iptables (whichever backend the machine's `iptables` is: nf_tables or
 * legacy; the variants are tried in turn). Every rule carries the comment
 * `troupe:<runKey>:<bridge>`, which is how close() and the sweep find them.
 * Rules are added and removed with one `iptables-restore --noflush` each.
 */
import { describeFailure, run } from "./net-exec.js";

export interface Firewall {
  /** The iptables command used: `iptables`, `iptables-nft` or `iptables-legacy`. */
  readonly command: string;
  /** `nf_tables` or `legacy`, as `iptables -V` says. */
  readonly backend: string;
  readonly restore: string;
  readonly save: string;
}

export type FirewallProbe = { ok: true; firewall: Firewall } | { ok: false; reason: string };

const CANDIDATES = ["iptables", "iptables-nft", "iptables-legacy"];
let probed: Promise<FirewallProbe> | undefined;

/** The first iptables variant that can list the nat table (probed once per process). */
export function firewall(): Promise<FirewallProbe> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<FirewallProbe> {
  const reasons: string[] = [];
  for (const command of CANDIDATES) {
    try {
      const listed = await run(command, ["-w", "-t", "nat", "-S", "POSTROUTING"]);
      if (listed.code !== 0) {
        reasons.push(describeFailure(command, ["-w", "-t", "nat", "-S", "POSTROUTING"], listed));
        continue;
      }
      const version = await run(command, ["-V"]);
      const backend = /\((nf_tables|legacy)\)/.exec(version.stdout)?.[1] ?? "unknown";
      return { ok: true, firewall: { command, backend, restore: `${command}-restore`, save: `${command}-save` } };
    } catch (error) {
      reasons.push((error as Error).message);
    }
  }
  const missing = reasons.every((r) => r.includes("is not installed"));
  return {
    ok: false,
    reason: missing ? "iptables is not installed (apt-get install iptables)" : `no usable iptables: ${reasons.join("; ")}`,
  };
}

export function ruleComment(runKey: string, bridge: string): string {
  return `troupe:${runKey}:${bridge}`;
}

/** The rules of one run's bridge, as `iptables-save` prints them (without the `-A`). */
export function bridgeRules(runKey: string, bridge: string, subnet: string): Array<{ table: string; rule: string }> {
  const comment = `-m comment --comment "${ruleComment(runKey, bridge)}"`;
  return [
    { table: "nat", rule: `POSTROUTING -s ${subnet} ! -o ${bridge} ${comment} -j MASQUERADE` },
    // Accept forwarding for the bridge even where FORWARD's policy is DROP (as Docker sets it).
    { table: "filter", rule: `FORWARD -i ${bridge} ${comment} -j ACCEPT` },
    { table: "filter", rule: `FORWARD -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED ${comment} -j ACCEPT` },
  ];
}

/** An `iptables-restore --noflush` script applying `op` to each rule, one transaction per table. */
function restoreScript(rules: ReadonlyArray<{ table: string; rule: string; op: "-A" | "-I" | "-D" }>): string {
  const tables = [...new Set(rules.map((r) => r.table))];
  return tables
    .map((table) => {
      const lines = rules.filter((r) => r.table === table).map((r) => `${r.op} ${r.rule}`);
      return `*${table}\n${lines.join("\n")}\nCOMMIT\n`;
    })
    .join("");
}

/** Adds the rules in one restore. Resolves to an error message, or undefined on success. */
export async function addRules(fw: Firewall, rules: ReadonlyArray<{ table: string; rule: string }>): Promise<string | undefined> {
  // FORWARD rules go first in their chain (-I) so that a DROP rule further down does not shadow them.
  const script = restoreScript(rules.map((r) => ({ ...r, op: r.table === "filter" ? "-I" : "-A" })));
  const result = await run(fw.restore, ["-w", "--noflush"], script);
  return result.code === 0 ? undefined : describeFailure(fw.restore, ["-w", "--noflush"], result);
}

export interface TaggedRule {
  table: string;
  /** The rule as `iptables-save` prints it, without the leading `-A`. */
  rule: string;
  runKey: string;
  bridge: string;
}

/** Every rule whose comment is `troupe:<runKey>:<bridge>`, in the nat and filter tables. */
export async function listTaggedRules(fw: Firewall): Promise<TaggedRule[]> {
  const rules: TaggedRule[] = [];
  for (const table of ["nat", "filter"]) {
    const saved = await run(fw.save, ["-t", table]);
    if (saved.code !== 0) continue;
    for (const line of saved.stdout.split("\n")) {
      if (!line.startsWith("-A ")) continue;
      const comment = /--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(line);
      const text = comment?.[1] ?? comment?.[2];
      const tag = text === undefined ? null : /^troupe:([^:]+):([^:]+)$/.exec(text);
      if (!tag) continue;
      rules.push({ table, rule: line.slice(3), runKey: tag[1] as string, bridge: tag[2] as string });
    }
  }
  return rules;
}

/**
 * Deletes the given rules: one restore for all; if that fails (a rule went
 * away meanwhile, say), one `iptables -D` per rule, where "not there" is fine.
 * Resolves to the rules it could not delete, with why.
 */
export async function deleteRules(fw: Firewall, rules: ReadonlyArray<{ table: string; rule: string }>): Promise<string[]> {
  if (rules.length === 0) return [];
  const batch = await run(fw.restore, ["-w", "--noflush"], restoreScript(rules.map((r) => ({ ...r, op: "-D" as const }))));
  if (batch.code === 0) return [];
  const failures: string[] = [];
  for (const { table, rule } of rules) {
    const args = ["-w", "-t", table, "-D", ...splitRule(rule)];
    const one = await run(fw.command, args);
    if (one.code === 0 || /does a matching rule exist|No chain\/target\/match/i.test(one.stderr)) continue;
    failures.push(describeFailure(fw.command, args, one));
  }
  return failures;
}

/** Splits a rule as iptables-save prints it into arguments (double quotes group, backslash escapes). */
export function splitRule(rule: string): string[] {
  const args: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of rule.matchAll(pattern)) {
    args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] as string));
  }
  return args;
}
