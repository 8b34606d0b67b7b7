// Recent traces (/v1/traces?limit=50) and, for the one clicked, a waterfall of its spans
// (/v1/traces/{trace_id}): bars placed by time, indented by depth.

import { getJSON } from "./api.js";
import { empty, h, ms, replace, table, td } from "./dom.js";

let openTrace = null;

// Unix time in seconds, milliseconds, microseconds or nanoseconds → milliseconds.
export function toMs(t) {
  const v = Number(t);
  if (!Number.isFinite(v)) return 0;
  if (v > 1e17) return v / 1e6;
  if (v > 1e14) return v / 1e3;
  if (v > 1e11) return v;
  return v * 1000;
}

// The API's times: start/end (seconds or milliseconds) or start_unix_nano/end_unix_nano.
const startOf = (x) => x.start ?? x.start_unix_nano;
const endOf = (x) => x.end ?? x.end_unix_nano ?? startOf(x);

function clock(t) {
  const d = new Date(toMs(t));
  return d.toLocaleTimeString([], { hour12: false });
}

function traceRow(t) {
  return h(
    "tr",
    { class: `clickable${openTrace === t.trace_id ? " selected" : ""}`, "data-trace": t.trace_id, onclick: () => showTrace(t.trace_id) },
    td(startOf(t) ? clock(startOf(t)) : "–"),
    td(t.root_service || ""),
    td(t.root_operation || ""),
    td(ms(t.duration_ms), { class: "num" }),
    td(t.span_count ?? (Number.isFinite(t.spans) ? t.spans : "–"), { class: "num" }),
    td(t.error ? "error" : "ok", { class: t.error ? "bad" : "ok" }),
    td(h("code", {}, t.trace_id)),
  );
}

// Spans in tree order (parents before children, siblings by start), each with its depth.
export function ordered(spans) {
  const ids = new Set(spans.map((x) => x.span_id));
  const children = new Map();
  for (const span of spans) {
    const parent = span.parent_id && ids.has(span.parent_id) ? span.parent_id : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  for (const list of children.values()) list.sort((a, b) => toMs(startOf(a)) - toMs(startOf(b)));
  const out = [];
  const seen = new Set();
  const walk = (parent, depth) => {
    for (const span of children.get(parent) || []) {
      if (seen.has(span.span_id)) continue;
      seen.add(span.span_id);
      out.push({ span, depth });
      walk(span.span_id, depth + 1);
    }
  };
  walk("", 0);
  for (const span of spans) if (!seen.has(span.span_id)) out.push({ span, depth: 0 });
  return out;
}

function isError(span) {
  if (span.error === true) return true;
  const status = span.status;
  if (status && typeof status === "object") return String(status.code || "").toUpperCase().includes("ERROR");
  return String(status || "").toUpperCase().includes("ERROR");
}

function waterfall(trace) {
  const spans = trace.span_list || (Array.isArray(trace.spans) ? trace.spans : []);
  if (!spans.length) return empty("This trace has no spans.");
  const t0 = Math.min(...spans.map((x) => toMs(startOf(x))));
  const t1 = Math.max(...spans.map((x) => toMs(endOf(x))));
  const total = Math.max(1e-6, t1 - t0);
  const rows = ordered(spans).map(({ span, depth }) => {
    const start = toMs(startOf(span));
    const end = toMs(endOf(span));
    const bar = h("div", { class: `bar${isError(span) ? " error" : ""}` });
    bar.style.left = `${((start - t0) / total) * 100}%`;
    bar.style.width = `${Math.max(0.2, ((end - start) / total) * 100)}%`;
    const name = h("div", { class: "name" }, h("strong", {}, span.service || "?"), ` ${span.name || ""}`, h("span", { class: "muted" }, span.kind ? ` (${String(span.kind).toLowerCase()})` : ""));
    name.style.paddingLeft = `${depth * 14}px`;
    const attributes = Object.entries(span.attributes || {}).map(([k, v]) => `${k}=${v}`).join("\n");
    return h("div", { class: "span-row", "data-span": span.span_id, title: attributes }, name, h("div", { class: "track" }, bar), h("div", { class: "dur" }, ms(end - start)));
  });
  return h("div", { class: "waterfall", "data-waterfall": trace.trace_id }, rows);
}

async function showTrace(id) {
  openTrace = id;
  for (const tr of document.querySelectorAll("#traces tr[data-trace]")) tr.classList.toggle("selected", tr.dataset.trace === id);
  replace("waterfall-title", `Trace ${id}`);
  try {
    const trace = await getJSON(`/api/v1/traces/${encodeURIComponent(id)}`);
    replace("waterfall", trace ? waterfall(trace) : empty("This trace is no longer kept."));
  } catch (error) {
    replace("waterfall", empty(`error: ${error.message}`));
  }
}

export async function refreshTraces() {
  const answer = await getJSON("/api/v1/traces", { limit: 50 });
  if (answer === null) {
    replace("traces", empty("This control plane does not serve /v1/traces yet."));
    return;
  }
  const list = Array.isArray(answer) ? answer : answer.traces || [];
  if (!list.length) {
    replace("traces", empty("No traces yet: sampled requests appear here."));
    return;
  }
  const headers = ["START", "ROOT SERVICE", "OPERATION", { label: "DURATION", num: true }, { label: "SPANS", num: true }, "STATUS", "TRACE ID"];
  replace("traces", table(headers, list.map(traceRow)));
  if (!openTrace) replace("waterfall", empty("Click a trace to see its spans."));
}
