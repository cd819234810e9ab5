/**
 * Keeping troupe's podman networks apart (as root, through the CLI backend):
 * one iptables rule per network at the top of FORWARD,
 *
 *   -i BRIDGE ! -o BRIDGE -d POOL -j DROP
 *
 * so that nothing leaves a network's bridge for another of troupe's networks
 * (all are /24s of one pool), while traffic within the bridge (which
 * br_netfilter also shows to FORWARD) and to anywhere else goes on as before.
 * Matching the bridge rather than source addresses, a container cannot get
 * around it by forging its address.
 *
 * podman's `isolate` option does the same with netavark's rules, but netavark
 * checks and re-adds those for every container it starts and stops, about
 * five more iptables processes per container under podman's network lock,
 * which every container's start and end take in turn: with 20 containers
 * starting at once that was about 15% of the whole (bench/README.md).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { tolerated } from "../../util/log.js";
import { splitRule } from "../host/net-iptables.js";

const execFileAsync = promisify(execFile);

function rule(network: string, bridge: string, pool: string): string[] {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new Error(`unexpected bridge name ${JSON.stringify(bridge)} for ${network}`);
  return ["FORWARD", "-i", bridge, "!", "-o", bridge, "-d", pool, "-m", "comment", "--comment", `troupe: ${network} apart`, "-j", "DROP"];
}

/** Rejects with iptables' own message when the rule cannot be added. */
export async function addIsolationRule(network: string, bridge: string, pool: string): Promise<void> {
  try {
    await execFileAsync("iptables", ["-w", "-I", ...rule(network, bridge, pool)], { timeout: 30_000 });
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new Error((e.stderr ?? "").trim().split("\n").filter(Boolean).pop() ?? e.message);
  }
}

/** Removes the rule; one that is not there (never added, removed before) is fine. */
export async function removeIsolationRule(network: string, bridge: string, pool: string): Promise<void> {
  await execFileAsync("iptables", ["-w", "-D", ...rule(network, bridge, pool)], { timeout: 30_000 }).catch(notThere(network));
}

export interface IsolationRule {
  /** The network it keeps apart, from its comment. */
  network: string;
  /** The rule as `iptables -S` prints it, without the leading `-A`. */
  rule: string;
}

/** Every isolation rule of troupe's on this machine (any process's, any home's). */
export async function listIsolationRules(): Promise<IsolationRule[]> {
  const { stdout } = await execFileAsync("iptables", ["-w", "-S", "FORWARD"], { timeout: 30_000 });
  const out: IsolationRule[] = [];
  for (const line of stdout.split("\n")) {
    const network = /--comment "troupe: (\S+) apart"/.exec(line)?.[1];
    if (line.startsWith("-A ") && network !== undefined) out.push({ network, rule: line.slice(3) });
  }
  return out;
}

/** Removes rules listed by listIsolationRules (one gone meanwhile is fine). */
export async function deleteIsolationRules(rules: readonly IsolationRule[]): Promise<void> {
  for (const { network, rule } of rules)
    await execFileAsync("iptables", ["-w", "-D", ...splitRule(rule)], { timeout: 30_000 }).catch(notThere(network));
}

/**
 * The handler of a failed `iptables -D`: a rule that is not there (never added, removed before) is fine; any other
 * failure is logged, and the rule, left, goes with a later sweep.
 */
function notThere(network: string): (error: unknown) => undefined {
  const report = tolerated("cannot remove a network's isolation rule", { network }, "warn");
  return (error) => {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    return /does a matching rule exist|No chain\/target\/match|Bad rule/i.test(stderr) ? undefined : report(error);
  };
}
