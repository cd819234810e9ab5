/** IPv4 arithmetic for run subnets: dotted quads, CIDR prefixes, overlaps. */

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

export interface Prefix {
  base: number;
  length: number;
}

export function parseCidr(text: string): Prefix | undefined {
  const [address, length] = text.split("/");
  const base = address === undefined ? undefined : parseIPv4(address);
  const bits = length === undefined ? 32 : Number(length);
  if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return undefined;
  return { base: base - (base % 2 ** (32 - bits)), length: bits };
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  const shorter = Math.min(a.length, b.length);
  const size = 2 ** (32 - shorter);
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}
