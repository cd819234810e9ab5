#!/usr/bin/env node
// Benchmark: the web UI at scale (issue 17), in the real browser (Debian's /usr/bin/chromium through
// playwright-core). Run after `npm run build`:
//   node bench/ui-scale.mjs [--rounds 3]
// The workflows are written into a temporary TROUPE_HOME's SQLite store through the store's own API
// (bench/ui-fill.mjs: a finished record with 4 transitions a task), not run, and served by `troupe ui` on
// loopback (the page reads the same routes as from `troupe server`). Cases, each in a fresh browser page:
//   baseline:  a workflow of 1 task: the page's first paint of its graph and task list;
//   10k:       10,000 tasks in 1,000 groups (a chain): first paint of the graph and of the task list, then the
//              longest main-thread task while scrolling the page through the task list and while zooming the graph;
//   100k:      100,000 tasks in 10,000 groups: first paint (the graph aggregated), the longest main-thread task
//              from navigation on, and how long the page takes to answer (a frame) once it has painted.
// --only 10k (or 100k) runs that case and the baseline.
// Times are the page's own (performance.now() from navigation start, bench/ui-probe.mjs), best of --rounds.
/* global requestAnimationFrame, window -- in functions page.evaluate runs in the page */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { fillBigWorkflow } from "./ui-fill.mjs";
import { WATCHED, installProbe, longestBetween, readProbe } from "./ui-probe.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg("rounds", 3);
/** --only 10k: that case (and the baseline) only. */
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const wanted = (name) => name === "baseline" || only === undefined || only === name;
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const dir = mkdtempSync("/var/tmp/troupe-uibench-");
const home = join(dir, "home");

/** `troupe ui` on a free loopback port: its URL (with the token in the fragment) and the process. */
async function startUi() {
  const ui = spawn(process.execPath, [troupe, "ui", "--home", home, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const url = await new Promise((resolve, reject) => {
    ui.stdout.on("data", (d) => {
      out += d;
      const match = /^troupe ui: open (\S+)$/m.exec(out);
      if (match) resolve(new URL(match[1]));
    });
    ui.on("exit", (code) => reject(new Error(`troupe ui exited (${code}): ${out}`)));
  });
  return { ui, url };
}

/** Waits until every one of `marks` (any one of a list) is set in the page; the probe then. */
async function waitForMarks(page, marks, timeoutMs = 120_000) {
  const started = Date.now();
  for (;;) {
    const probe = await page.evaluate(readProbe);
    if (marks.every((m) => (Array.isArray(m) ? m : [m]).some((one) => probe.marks[one] !== undefined))) return probe;
    if (Date.now() - started > timeoutMs)
      throw new Error(`marks ${JSON.stringify(marks)} not seen in ${timeoutMs} ms: ${JSON.stringify(probe.marks)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const firstOf = (probe, names) => Math.min(...names.map((n) => probe.marks[n] ?? Infinity));

async function openWorkflow(browser, url, id) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.addInitScript(installProbe, WATCHED);
  await page.goto(`${url.origin}/workflows/${id}${url.hash}`);
  return page;
}

/** Waits until the page has had no long task for a second (it has finished loading and applying the events). */
async function waitQuiet(page) {
  for (;;) {
    const probe = await page.evaluate(readProbe);
    const lastEnd = Math.max(0, ...probe.longTasks.map((t) => t.start + t.duration));
    if (probe.now - lastEnd > 1000) return probe;
    await page.waitForTimeout(200);
  }
}

/** The longest main-thread task while `act` runs (page clock). */
async function longestDuring(page, act) {
  const from = await page.evaluate(() => performance.now());
  await act();
  // A long task is reported once it has ended: a frame later.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 100))));
  const probe = await page.evaluate(readProbe);
  return longestBetween(probe.longTasks, from, probe.now);
}

async function scrollTasks(page) {
  await page.locator("table.tasks").scrollIntoViewIfNeeded();
  const box = await page.locator("table.tasks").boundingBox();
  await page.mouse.move(box.x + 100, Math.min(box.y + 200, 800));
  for (let i = 0; i < 30; i += 1) {
    await page.mouse.wheel(0, 800);
    await page.waitForTimeout(30);
  }
}

async function zoomGraph(page) {
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = await page.locator(".graph").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 20; i += 1) {
    await page.mouse.wheel(0, i < 10 ? -200 : 200);
    await page.waitForTimeout(30);
  }
}

const best = (values) => Math.min(...values);
const ms = (value) => value.toFixed(0).padStart(7);

async function main() {
  const t0 = Date.now();
  const ids = {
    baseline: fillBigWorkflow(home, { name: "ui-one", tasks: 1, groups: 1 }),
    "10k": fillBigWorkflow(home, { name: "ui-10k", tasks: 10_000, groups: 1_000 }),
    "100k": wanted("100k") ? fillBigWorkflow(home, { name: "ui-100k", tasks: 100_000, groups: 10_000 }) : undefined,
  };
  console.log(`records written through the store in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const { ui, url } = await startUi();
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
  });
  const results = { baseline: [], "10k": [], "100k": [] };
  try {
    for (let round = 0; round < rounds; round += 1) {
      {
        const page = await openWorkflow(browser, url, ids.baseline);
        const probe = await waitForMarks(page, ["graph", "tasks"]);
        results.baseline.push({ graph: probe.marks.graph, tasks: probe.marks.tasks });
        await page.close();
      }
      if (wanted("10k")) {
        const page = await openWorkflow(browser, url, ids["10k"]);
        const probe = await waitForMarks(page, ["graph", "tasks"]);
        const settled = await waitQuiet(page);
        console.log(
          `10k: long tasks while loading: ${settled.longTasks.map((t) => `${t.start.toFixed(0)}+${t.duration.toFixed(0)}`).join(" ")}`,
        );
        const scroll = await longestDuring(page, () => scrollTasks(page));
        const zoom = await longestDuring(page, () => zoomGraph(page));
        const rows = await page.locator(WATCHED.tasks).count();
        results["10k"].push({ graph: probe.marks.graph, tasks: probe.marks.tasks, scroll, zoom, rows });
        await page.close();
      }
      if (wanted("100k")) {
        const page = await openWorkflow(browser, url, ids["100k"]);
        const probe = await waitForMarks(page, [["graph", "graphSummary"], "tasks"], 300_000);
        const asked = Date.now();
        await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
        const answer = Date.now() - asked;
        const after = await page.evaluate(readProbe);
        results["100k"].push({
          graph: firstOf(probe, ["graph", "graphSummary"]),
          tasks: probe.marks.tasks,
          longest: longestBetween(after.longTasks, 0, after.now),
          answer,
        });
        await page.close();
      }
      console.log(`round ${round + 1}: ${JSON.stringify(results, (k, v) => (typeof v === "number" ? Math.round(v) : v))}`);
    }
  } finally {
    await browser.close();
    ui.kill("SIGTERM");
  }
  const base = best(results.baseline.map((r) => Math.max(r.graph, r.tasks)));
  const pick = (name, field) => best(results[name].map((r) => r[field]));
  console.log(
    `\nbest of ${rounds}, the page's own ms from navigation start; x = against the 1-task page's first paint (${base.toFixed(0)} ms)`,
  );
  console.log("case       graph ms  tasks ms  x graph  x tasks  longest task ms");
  for (const name of ["baseline", "10k", "100k"].filter(wanted)) {
    const graph = pick(name, "graph");
    const tasks = pick(name, "tasks");
    const longest =
      name === "10k"
        ? `scroll ${pick(name, "scroll").toFixed(0)}, zoom ${pick(name, "zoom").toFixed(0)}`
        : name === "100k"
          ? `whole load ${pick(name, "longest").toFixed(0)}; a frame after paint in ${pick(name, "answer").toFixed(0)} ms`
          : "";
    console.log(
      `${name.padEnd(9)}${ms(graph)}   ${ms(tasks)}  ${(graph / base).toFixed(1).padStart(6)}  ${(tasks / base).toFixed(1).padStart(6)}   ${longest}`,
    );
  }
  if (wanted("10k")) console.log(`10k task rows in the document: ${results["10k"][0].rows}`);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
