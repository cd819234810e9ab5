/**
 * What the run network decides before `ip` does it (network.ts does): the
 * names and limits of troupe's links, which /24s are free, and the `ip
 * -batch` scripts that remove a bridge with its veths. No I/O.
 */
import { overlaps, type Prefix } from "./net-address.js";

export const PREFIX = 24;
export const BRIDGE_PREFIX = "trp-";
export const ALIAS_PREFIX = "troupe:";
export const GROUP_MIN = 0x10000;
export const GROUP_MAX = 0x7fffffff;
export const RUN_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
}
export interface IpLink {
  ifname: string;
  mtu?: number;
  master?: string;
  ifalias?: string;
  /** "default" or the group number. */
  group?: string;
  addr_info?: IpAddrInfo[];
}
export interface IpRoute {
  dst?: string;
  dev?: string;
}

export function freeSubnets(pool: Prefix, used: readonly Prefix[]): number[] {
  const free: number[] = [];
  const count = 2 ** (PREFIX - pool.length);
  for (let i = 0; i < count; i++) {
    const base = pool.base + i * 2 ** (32 - PREFIX);
    const candidate = { base, length: PREFIX };
    if (!used.some((u) => overlaps(u, candidate))) free.push(base);
  }
  return free;
}

export function namesScript(names: readonly string[]): string {
  return names.map((name) => `link del dev ${name}\n`).join("");
}

/** The bridge's ports and any leftover host ends named after it. */
export function membersOf(links: readonly IpLink[], bridge: string): string[] {
  const vethPrefix = `v${bridge.slice(BRIDGE_PREFIX.length)}-`;
  return links.filter((l) => l.master === bridge || l.ifname.startsWith(vethPrefix)).map((l) => l.ifname);
}

/**
 * The `link del` commands that remove a bridge with its veths: one `link del group G`
 * when every link of the bridge's group is the bridge's own (so never another's
 * link, even if groups collided), else one command per link.
 */
export function removalScript(links: readonly IpLink[], bridge: string): { script: string; ports: string[] } {
  const ports = membersOf(links, bridge);
  const self = links.find((l) => l.ifname === bridge);
  const ours = new Set([...ports, ...(self ? [bridge] : [])]);
  const group = self?.group;
  const grouped = group === undefined || !/^\d+$/.test(group) || Number(group) < GROUP_MIN ? [] : links.filter((l) => l.group === group);
  if (grouped.length > 0 && grouped.every((l) => ours.has(l.ifname))) {
    for (const l of grouped) ours.delete(l.ifname);
    return { script: `link del group ${group}\n` + namesScript([...ours]), ports };
  }
  return { script: namesScript([...ours]), ports };
}
