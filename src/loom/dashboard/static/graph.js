// The service graph: workloads as nodes, calls as edges, laid out left to right in layers
// (callers nobody calls on the left). Data: /v1/edges?window=60 and /v1/workloads.

import { getJSON } from "./api.js";
import { empty, ms, num, pct, replace, s } from "./dom.js";

const NODE_W = 170;
const NODE_H = 46;
const COL_GAP = 210;
const ROW_GAP = 34;
const PAD = 30;

const REPLICA = /^(.+)-\d+$/;

function deployName(name) {
  const match = REPLICA.exec(name);
  return match ? match[1] : name;
}

// catalog.bookstore.svc.cluster.local → catalog
function shortService(name) {
  return String(name || "unknown").split(".")[0];
}

function key(namespace, workload) {
  return `${namespace}/${workload}`;
}

// Nodes and merged edges from the API's rows (several rows per pair: one per principal).
export function buildGraph(edgeRows, workloads) {
  const nodes = new Map();
  const node = (namespace, workload, service) => {
    const id = key(namespace, workload);
    if (!nodes.has(id)) nodes.set(id, { id, namespace, workload, services: new Set() });
    if (service && service !== "unknown") nodes.get(id).services.add(shortService(service));
    return nodes.get(id);
  };
  for (const w of workloads || []) {
    const n = node(w.namespace, deployName(w.name));
    if (w.labels && w.labels.app) n.app = w.labels.app;
  }
  const edges = new Map();
  for (const row of edgeRows || []) {
    const src = row.source;
    const dst = row.destination;
    // replicas (catalog-v1-0, catalog-v1-1) are one node: their Workload (catalog-v1)
    const known = dst.workload && dst.workload !== "unknown";
    const dstWorkload = known ? deployName(dst.workload) : `${shortService(dst.service)} (service)`;
    const a = node(src.namespace, deployName(src.workload));
    const b = node(dst.namespace, dstWorkload, dst.service);
    const id = `${a.id}→${b.id}`;
    const edge = edges.get(id) || { id, source: a.id, target: b.id, rps: 0, ok: 0, rated: 0, p99: null, mtls: true };
    edge.rps += row.rps || 0;
    if (row.success_rate !== null && row.success_rate !== undefined) {
      edge.ok += row.success_rate * (row.rps || 0);
      edge.rated += row.rps || 0;
    }
    if (row.p99_ms !== null && row.p99_ms !== undefined) edge.p99 = Math.max(edge.p99 ?? 0, row.p99_ms);
    edge.mtls = edge.mtls && Boolean(row.mtls);
    edges.set(id, edge);
  }
  for (const edge of edges.values()) edge.success = edge.rated > 0 ? edge.ok / edge.rated : null;
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

// Layer = the longest chain of callers before a node (cycles broken by a depth cap).
export function layout(graph) {
  const incoming = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const e of graph.edges) if (e.source !== e.target) incoming.get(e.target).push(e.source);
  const layer = new Map();
  const limit = graph.nodes.length;
  const depth = (id, seen) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id) || seen.size > limit) return 0;
    seen.add(id);
    let d = 0;
    for (const from of incoming.get(id)) d = Math.max(d, depth(from, seen) + 1);
    seen.delete(id);
    layer.set(id, d);
    return d;
  };
  for (const n of graph.nodes) depth(n.id, new Set());
  const columns = [];
  for (const n of graph.nodes) {
    const l = layer.get(n.id);
    (columns[l] ||= []).push(n);
  }
  const position = new Map();
  columns.forEach((column, index) => {
    // order by the mean row of the callers (fewer crossings), then by name
    const rank = (n) => {
      const rows = incoming.get(n.id).map((id) => position.get(id)?.row).filter((r) => r !== undefined);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : -1;
    };
    column.sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id));
    column.forEach((n, row) => {
      position.set(n.id, {
        row,
        x: PAD + index * (NODE_W + COL_GAP),
        y: PAD + row * (NODE_H + ROW_GAP),
      });
    });
  });
  const tallest = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  return {
    position,
    width: PAD * 2 + Math.max(1, columns.length) * (NODE_W + COL_GAP) - COL_GAP,
    height: PAD * 2 + tallest * (NODE_H + ROW_GAP) - ROW_GAP + 20,
  };
}

function edgeLabel(edge) {
  const parts = [`${num(edge.rps, edge.rps < 10 ? 2 : 1)} rps`, pct(edge.success), `p99 ${ms(edge.p99)}`];
  return parts.join(" · ");
}

function drawEdge(edge, from, to) {
  const width = 1.2 + Math.min(5, Math.log10(1 + edge.rps) * 2.5);
  let d;
  let lx;
  let ly;
  if (edge.source === edge.target) {
    const x = from.x + NODE_W / 2;
    const y = from.y + NODE_H;
    d = `M${x - 20},${y} C${x - 40},${y + 50} ${x + 40},${y + 50} ${x + 20},${y}`;
    lx = x;
    ly = y + 48;
  } else if (to.x > from.x) {
    const x1 = from.x + NODE_W;
    const y1 = from.y + NODE_H / 2;
    const x2 = to.x;
    const y2 = to.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}`;
    lx = mid;
    ly = (y1 + y2) / 2 - 6;
  } else {
    // a call back to an earlier (or the same) column: loop underneath
    const x1 = from.x + NODE_W / 2;
    const y1 = from.y + NODE_H;
    const x2 = to.x + NODE_W / 2;
    const y2 = to.y + NODE_H;
    const low = Math.max(y1, y2) + 40;
    d = `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2 + 6}`;
    lx = (x1 + x2) / 2;
    ly = low - 4;
  }
  const bad = edge.success !== null && edge.success < 0.95;
  return s(
    "g",
    {
      class: `edge ${edge.mtls ? "mtls" : "plain"}`,
      "data-edge": edge.id,
      "data-source": edge.source,
      "data-target": edge.target,
      "data-rps": edge.rps,
    },
    s("title", {}, `${edge.source} → ${edge.target}\n${edgeLabel(edge)}\n${edge.mtls ? "mutual TLS" : "not (all) mutual TLS"}`),
    s("path", { d, "stroke-width": width, "marker-end": `url(#arrow-${edge.mtls ? "mtls" : "plain"})` }),
    s("text", { x: lx, y: ly, "text-anchor": "middle", class: bad ? "bad" : "" }, edgeLabel(edge)),
    lock(lx, ly + 4, edge.mtls),
  );
}

// A padlock under the label: closed (mutual TLS) or open (plaintext).
function lock(x, y, closed) {
  const color = closed ? "#15803d" : "#d97706";
  const shackle = closed ? "M-3,0 V-2.5 a3,3 0 0 1 6,0 V0" : "M-3,0 V-2.5 a3,3 0 0 1 6,0 V-1.5";
  return s(
    "g",
    { class: "lock", transform: `translate(${x},${y + 5})`, "data-mtls": closed ? "yes" : "no" },
    s("path", { d: shackle, fill: "none", stroke: color, "stroke-width": 1.4, transform: closed ? "" : "translate(3,-1)" }),
    s("rect", { x: -4.5, y: 0, width: 9, height: 7, rx: 1.2, fill: color }),
  );
}

function drawNode(n, at, client) {
  const services = [...n.services];
  const sub = services.length ? `svc ${services.join(", ")}` : n.namespace;
  return s(
    "g",
    { class: `node${client ? " client" : ""}`, "data-node": n.id, transform: `translate(${at.x},${at.y})` },
    s("title", {}, `${n.id}${services.length ? `\nservice: ${services.join(", ")}` : ""}`),
    s("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
    s("text", { x: 10, y: 19 }, n.workload.length > 24 ? `${n.workload.slice(0, 23)}…` : n.workload),
    s("text", { x: 10, y: 36, class: "sub" }, sub.length > 28 ? `${sub.slice(0, 27)}…` : sub),
  );
}

function markers() {
  const arrow = (name, color) =>
    s(
      "marker",
      { id: `arrow-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", fill: color }),
    );
  return s("defs", {}, arrow("mtls", "#15803d"), arrow("plain", "#d97706"));
}

export function renderGraph(container, graph) {
  if (!graph.nodes.length) {
    replace(container, empty("No workloads registered and no calls in the last 60 seconds."));
    return;
  }
  const { position, width, height } = layout(graph);
  const called = new Set(graph.edges.map((e) => e.target));
  const calling = new Set(graph.edges.map((e) => e.source));
  const svg = s(
    "svg",
    { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "service graph" },
    markers(),
    graph.edges.map((e) => drawEdge(e, position.get(e.source), position.get(e.target))),
    graph.nodes.map((n) => drawNode(n, position.get(n.id), calling.has(n.id) && !called.has(n.id))),
  );
  replace(container, svg);
}

export async function refreshGraph() {
  const [edges, workloads] = await Promise.all([getJSON("/api/v1/edges", { window: 60 }), getJSON("/api/v1/workloads")]);
  const container = document.getElementById("graph");
  const graph = buildGraph(edges ? edges.edges : [], workloads || []);
  renderGraph(container, graph);
  if (edges === null) {
    container.prepend(empty("This control plane does not serve /v1/edges: the graph shows the registered workloads only."));
  }
}
