/**
 * The real browser for the UI's tests: Debian's Chromium (/usr/bin/chromium,
 * `apt-get install -y chromium fonts-dejavu-core`) driven by playwright-core,
 * never a downloaded one; axe-core for accessibility; screenshots kept under
 * test-artefacts/ui/ (gitignored) to be looked at.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ROOT } from "../run/helpers.js";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTEFACTS = join(ROOT, "test-artefacts", "ui");

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}
if (!haveChromium()) console.warn(`test/ui: no ${CHROMIUM} (apt-get install -y chromium fonts-dejavu-core): the browser tests skip`);

export async function launchBrowser(): Promise<Browser> {
  if (!haveChromium()) throw new Error(`no ${CHROMIUM}: apt-get install -y chromium fonts-dejavu-core`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root, Chromium needs --no-sandbox; the rest keeps it from reaching for the network.
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTEFACTS, { recursive: true });
  const file = join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * The page's serious and critical accessibility violations (WCAG 2.1 A and AA), as "rule: target" lines. axe is
 * evaluated through the DevTools protocol, which the page's Content-Security-Policy does not stop.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const page = globalThis as unknown as {
      document: unknown;
      axe: { run(context: unknown, options: object): Promise<{ violations: Violation[] }> };
    };
    interface Violation {
      id: string;
      impact: string | null;
      help: string;
      nodes: { target: unknown[] }[];
    }
    const result = await page.axe.run(page.document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.targets.slice(0, 5).join(", ")}`);
}

/** Signs in on the login page the browser is at (or is sent to). */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}
