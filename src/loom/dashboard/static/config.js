// Configuration per service: /api/config (the dashboard's own view of /v1/resources and
// /v1/workloads; the matching rule is in loom/dashboard/config_view.py and docs/dashboard.md).

import { getJSON } from "./api.js";
import { empty, h, replace } from "./dom.js";

function details(r) {
  const parts = [];
  if (r.subsets && r.subsets.length) {
    const subsets = r.subsets.map((x) => `${x.name} (${Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(",")})`);
    parts.push(`subsets: ${subsets.join(", ")}`);
  }
  if (r.mode) parts.push(`mode ${r.mode}`);
  if (r.action) parts.push(`action ${r.action}`);
  return parts.join(" · ");
}

function resourceRow(r) {
  return h(
    "tr",
    { "data-resource": `${r.kind}/${r.namespace}/${r.name}` },
    h("td", {}, h("span", { class: "kind" }, r.kind)),
    h("td", {}, `${r.namespace}/${r.name}`),
    h("td", { class: "where" }, `${r.file}:${r.line}`),
    h("td", { class: "muted" }, r.why || ""),
    h("td", {}, details(r)),
  );
}

function serviceCard(service) {
  const selector = Object.entries(service.selector || {}).map(([k, v]) => `${k}=${v}`).join(",");
  return h(
    "div",
    { class: "card", "data-service": `${service.namespace}/${service.name}` },
    h("h3", {}, `${service.namespace}/${service.name} `, h("span", { class: "muted" }, selector ? `selector ${selector}` : "no selector", ` · workloads: ${service.workloads.length ? service.workloads.join(", ") : "none registered"}`)),
    service.resources.length ? h("table", {}, h("tbody", {}, service.resources.map(resourceRow))) : h("div", { class: "muted" }, "No routing or policy resource applies: defaults."),
  );
}

export async function refreshConfig() {
  const view = await getJSON("/api/config");
  if (!view) {
    replace("config", empty("No configuration."));
    return;
  }
  const parts = [];
  if (view.last_error) parts.push(h("div", { class: "banner" }, `The last change was refused; the previous configuration stays:\n${view.last_error}`));
  if (!view.services.length) parts.push(empty("No Service resources."));
  parts.push(...view.services.map(serviceCard));
  if (view.unmatched && view.unmatched.length) {
    parts.push(h("div", { class: "card" }, h("h3", {}, "Applying to no Service"), h("table", {}, h("tbody", {}, view.unmatched.map(resourceRow)))));
  }
  if (view.store) parts.push(h("div", { class: "muted" }, `store: ${view.store}`));
  replace("config", parts);
}
