// The dashboard: tabs, each refreshed every few seconds while shown (the tap streams instead).

import { refreshConfig } from "./config.js";
import { replace } from "./dom.js";
import { refreshGraph } from "./graph.js";
import { refreshMetrics } from "./metrics.js";
import { refreshProxies } from "./proxies.js";
import { setupTap } from "./tap.js";
import { refreshTraces } from "./traces.js";

const POLL_MS = 3000;
const VIEWS = {
  graph: refreshGraph,
  metrics: refreshMetrics,
  tap: null,
  traces: refreshTraces,
  config: refreshConfig,
  proxies: refreshProxies,
};

let current = "graph";
let timer = null;
let busy = false;

async function refresh() {
  const job = VIEWS[current];
  if (!job || busy) return;
  busy = true;
  try {
    await job();
    replace("status", `updated ${new Date().toLocaleTimeString([], { hour12: false })}`);
  } catch (error) {
    replace("status", `error: ${error.message}`);
  } finally {
    busy = false;
  }
}

function show(view) {
  current = view;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.classList.toggle("active", section.id === `view-${view}`);
  if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
  refresh();
}

function start() {
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.view));
  document.getElementById("metrics-by").addEventListener("change", refresh);
  setupTap();
  const wanted = location.hash.slice(1);
  show(wanted in VIEWS ? wanted : "graph");
  timer = setInterval(refresh, POLL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearInterval(timer);
    timer = null;
  } else if (timer === null) {
    refresh();
    timer = setInterval(refresh, POLL_MS);
  }
});

start();
