/**
 * The layering of ARCHITECTURE.md, checked on the source: a layer imports only
 * layers below it, and only through their index.ts. (Import cycles are checked
 * by dpdm in the test command.)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";

const RANK: Record<string, number> = {
  util: 0,
  errors: 0,
  model: 0,
  spec: 1,
  plan: 2,
  port: 3,
  store: 3,
  // Moving url: data (the port's DataPlane, through the AWS SDK): the runtimes may use it from their nodes; the engine reaches it through the port.
  data: 3.5,
  // The engine speaks only the port: it and the runtimes, on one rank, may not import each other.
  runtime: 4,
  engine: 4,
  drive: 5,
  server: 6,
  cli: 7,
  web: 7,
};
/** Helpers without a public surface of their own: any file may be imported. */
const OPEN_FOLDERS = new Set(["util"]);
const srcDir = new URL("../src/", import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(name) && !name.endsWith(".test.ts") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
}

const violations: string[] = [];
for (const file of sourceFiles(srcDir)) {
  const layer = relative(srcDir, file).split(sep)[0] as string;
  for (const spec of importsOf(file)) {
    if (!spec.startsWith(".")) continue;
    const target = relative(srcDir, join(file, "..", spec));
    const targetLayer = target.split(sep)[0] as string;
    if (targetLayer === layer) continue;
    const where = `${relative(srcDir, file)} imports ${spec}`;
    if (RANK[layer] === undefined || RANK[targetLayer] === undefined) violations.push(`${where}: unknown layer`);
    else if ((RANK[targetLayer] as number) >= (RANK[layer] as number) && !OPEN_FOLDERS.has(targetLayer))
      violations.push(`${where}: not a lower layer`);
    else if (!OPEN_FOLDERS.has(targetLayer) && target !== join(targetLayer, "index.js"))
      violations.push(`${where}: not through ${targetLayer}/index.ts`);
  }
}

describe("architecture", () => {
  it("every layer imports only lower layers, through their index.ts", () => {
    expect(violations).toEqual([]);
  });

  it("finds the imports it checks", () => {
    expect(importsOf(join(srcDir, "plan", "compile.ts"))).toContain("../spec/index.js");
  });
});
