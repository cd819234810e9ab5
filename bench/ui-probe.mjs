// What the UI benchmark and its test measure inside the page, with the page's own clock (performance.now(), from
// the navigation's start): when the first element of each watched kind appeared, and the main thread's long tasks
// (PerformanceObserver "longtask": any task over 50 ms, the browser's own measure of jank).
/* global document, MutationObserver -- installProbe runs in the page */

/** Installed before the page's scripts run (page.addInitScript); `watched` maps a mark's name to a CSS selector. */
export function installProbe(watched) {
  const probe = { marks: {}, longTasks: [] };
  globalThis.__uiProbe = probe;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) probe.longTasks.push({ start: entry.startTime, duration: entry.duration });
  }).observe({ type: "longtask", buffered: true });
  const look = () => {
    for (const [name, selector] of Object.entries(watched))
      if (probe.marks[name] === undefined && document.querySelector(selector)) probe.marks[name] = performance.now();
  };
  new MutationObserver(look).observe(document, { childList: true, subtree: true });
}

/** The page's marks and long tasks so far. */
export const readProbe = () => ({ ...globalThis.__uiProbe, now: performance.now() });

/** The longest main-thread task that overlapped [from, to] (page clock), 0 if none went over 50 ms. */
export function longestBetween(longTasks, from, to) {
  return Math.max(0, ...longTasks.filter((t) => t.start + t.duration >= from && t.start <= to).map((t) => t.duration));
}

/** Where each mark is looked for: a graph node drawn, the graph's summary (a workflow too big to draw), a task row. */
export const WATCHED = {
  graph: ".react-flow__node",
  graphSummary: ".graph-summary",
  tasks: "table.tasks tbody tr[data-task]",
};
