// Small DOM helpers: elements (HTML and SVG) and number formats.

const SVG_NS = "http://www.w3.org/2000/svg";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  return fill(el, attrs, children);
}

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(target, ...children) {
  const el = typeof target === "string" ? document.getElementById(target) : target;
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
}

export function empty(message) {
  return h("div", { class: "empty" }, message);
}

export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits);
}

export function pct(value) {
  if (value === null || value === undefined) return "–";
  return `${(value * 100).toFixed(value >= 0.9995 ? 0 : 1)}%`;
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)}s` : `${Number(value).toFixed(value < 10 ? 1 : 0)}ms`;
}

export function rateClass(rate) {
  if (rate === null || rate === undefined) return "";
  return rate >= 0.99 ? "ok" : rate >= 0.95 ? "warn" : "bad";
}

export function table(headers, rows) {
  const head = h("tr", {}, headers.map((x) => h("th", { class: x.num ? "num" : "" }, x.label ?? x)));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, rows));
}

export function td(value, attrs = {}) {
  return h("td", attrs, value);
}
