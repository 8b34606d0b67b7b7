// Golden metrics: a table per service (or workload) over the last 60 s, and 15-minute charts of
// the selected service. Data: /v1/stats?by=svc|deploy&window=60 and /v1/series.

import { getJSON } from "./api.js";
import { lineChart } from "./charts.js";
import { empty, h, ms, num, pct, rateClass, replace, table, td } from "./dom.js";

let selected = null; // {namespace, name}

const HEADERS = [
  "NAMESPACE",
  "NAME",
  { label: "RPS", num: true },
  { label: "SUCCESS", num: true },
  { label: "P50", num: true },
  { label: "P95", num: true },
  { label: "P99", num: true },
  { label: "TCP CONN", num: true },
  { label: "MTLS", num: true },
  { label: "MESHED", num: true },
];

function row(r, by) {
  const isSelected = selected && selected.namespace === r.namespace && selected.name === r.name;
  const pick = () => {
    selected = { namespace: r.namespace, name: r.name };
    refreshMetrics();
  };
  return h(
    "tr",
    { class: `${by === "svc" ? "clickable" : ""}${isSelected ? " selected" : ""}`, "data-row": `${r.namespace}/${r.name}`, onclick: by === "svc" ? pick : undefined },
    td(r.namespace),
    td(r.name),
    td(num(r.rps, 2), { class: "num" }),
    td(pct(r.success_rate), { class: `num ${rateClass(r.success_rate)}` }),
    td(ms(r.p50_ms), { class: "num" }),
    td(ms(r.p95_ms), { class: "num" }),
    td(ms(r.p99_ms), { class: "num" }),
    td(r.tcp_connections ?? "–", { class: "num" }),
    td(pct(r.mtls_share), { class: "num" }),
    td(r.meshed ?? "–", { class: "num" }),
  );
}

async function refreshCharts() {
  const title = document.getElementById("charts-title");
  if (!selected) {
    replace(title, "");
    replace("charts");
    return;
  }
  replace(title, `${selected.namespace}/${selected.name}: the last 15 minutes`);
  const series = await getJSON("/api/v1/series", { namespace: selected.namespace, service: selected.name, minutes: 15, step: 10 });
  if (series === null) {
    replace("charts", empty("This control plane does not serve /v1/series."));
    return;
  }
  const points = series.points || [];
  const of = (field) => points.map((p) => ({ t: p.t, value: p[field] }));
  replace(
    "charts",
    lineChart("Requests per second", of("rps"), (v) => num(v, v < 10 ? 2 : 1)),
    lineChart("Success rate", of("success_rate"), pct, 1),
    lineChart("Latency p99", of("p99_ms"), ms),
  );
}

export async function refreshMetrics() {
  const by = document.getElementById("metrics-by").value;
  const stats = await getJSON("/api/v1/stats", { by, window: 60 });
  if (stats === null) {
    replace("metrics-table", empty("This control plane does not serve /v1/stats yet."));
  } else if (!stats.rows || !stats.rows.length) {
    replace("metrics-table", empty("No requests in the last 60 seconds."));
  } else {
    if (!selected && by === "svc") selected = { namespace: stats.rows[0].namespace, name: stats.rows[0].name };
    replace("metrics-table", table(HEADERS, stats.rows.map((r) => row(r, by))));
  }
  await refreshCharts();
}
