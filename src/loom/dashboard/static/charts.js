// SVG line charts: one series over time, with a few gridlines and the latest value.

import { h, s } from "./dom.js";

const W = 360;
const H = 150;
const M = { left: 46, right: 10, top: 10, bottom: 22 };

function clock(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

// points: [{t, value}] (value null: no data then); format: value → text; fixedMax: the y range's top.
export function lineChart(title, points, format, fixedMax = null) {
  const known = points.filter((p) => p.value !== null && p.value !== undefined);
  const latest = known.length ? format(known[known.length - 1].value) : "–";
  const box = h("div", { class: "chart", "data-chart": title }, h("h3", {}, `${title} `, h("span", { class: "muted" }, latest)));
  if (points.length < 2) {
    box.append(h("div", { class: "empty" }, "no data yet"));
    return box;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const top = fixedMax ?? Math.max(1e-9, ...known.map((p) => p.value)) * 1.15;
  const x = (t) => M.left + ((t - t0) / Math.max(1e-9, t1 - t0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);
  const parts = [];
  for (let i = 0; i <= 3; i++) {
    const v = (top * i) / 3;
    parts.push(s("line", { class: "grid", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    parts.push(s("text", { x: M.left - 4, y: y(v) + 3, "text-anchor": "end" }, format(v)));
  }
  parts.push(s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  parts.push(s("text", { x: M.left, y: H - 6 }, clock(t0)));
  parts.push(s("text", { x: W - M.right, y: H - 6, "text-anchor": "end" }, clock(t1)));
  // one path, broken where there is no data
  let d = "";
  let open = false;
  for (const p of points) {
    if (p.value === null || p.value === undefined) {
      open = false;
      continue;
    }
    d += `${open ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.value).toFixed(1)} `;
    open = true;
  }
  if (d) parts.push(s("path", { class: "line", d }));
  box.append(s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, parts));
  return box;
}
