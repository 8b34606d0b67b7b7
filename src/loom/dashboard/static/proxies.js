// Proxies: their sync status (/v1/proxy-status) and certificates (/v1/identities).

import { getJSON } from "./api.js";
import { empty, h, replace, table, td } from "./dom.js";

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.abs(seconds);
  const text = s >= 86400 ? `${(s / 86400).toFixed(1)}d` : s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${Math.round(s / 60)}m` : `${Math.round(s)}s`;
  return seconds < 0 ? `expired ${text} ago` : text;
}

function statusClass(status) {
  return status === "SYNCED" ? "ok" : status === "NACKED" ? "bad" : "warn";
}

async function refreshSync() {
  const rows = await getJSON("/api/v1/proxy-status");
  if (!rows || !rows.length) {
    replace("proxies", empty("No proxies connected."));
    return;
  }
  const headers = ["NAMESPACE", "WORKLOAD", "VERSION", "STATUS", "READY", { label: "LAST SEEN", num: true }, "ERROR"];
  replace(
    "proxies",
    table(
      headers,
      rows.map((r) =>
        h(
          "tr",
          { "data-proxy": `${r.namespace}/${r.workload}` },
          td(r.namespace),
          td(r.workload),
          td(h("code", {}, String(r.version ?? "").slice(0, 12))),
          td(r.status, { class: statusClass(r.status) }),
          td(r.ready === null || r.ready === undefined ? "–" : r.ready ? "yes" : "no", { class: r.ready === false ? "warn" : "" }),
          td(r.last_seen_seconds_ago === null ? "–" : `${r.last_seen_seconds_ago}s ago`, { class: "num" }),
          td(r.error || (r.warnings && r.warnings.length ? `${r.warnings.length} warning(s)` : "")),
        ),
      ),
    ),
  );
}

async function refreshIdentities() {
  const answer = await getJSON("/api/v1/identities");
  if (!answer || !answer.identities || !answer.identities.length) {
    replace("identities", empty("No certificates issued yet."));
    return;
  }
  const now = answer.now || Date.now() / 1000;
  const ttl = answer.cert_ttl || 86400;
  const headers = ["IDENTITY", "WORKLOADS", "SERIAL", "ISSUED", { label: "EXPIRES IN", num: true }];
  const rows = answer.identities.map((row) => {
    const cert = row.certificate;
    const left = cert ? cert.not_after - now : null;
    const cls = left === null ? "" : left <= 0 ? "bad" : left < ttl * 0.25 ? "warn" : "ok";
    return h(
      "tr",
      { "data-identity": row.spiffe_id },
      td(h("code", {}, row.spiffe_id)),
      td(row.workloads.join(", ") || "–"),
      td(cert ? h("code", {}, String(cert.serial).slice(0, 16)) : "–"),
      td(cert ? `${duration(now - cert.issued_at)} ago` : "none since the control plane started"),
      td(duration(left), { class: `num ${cls}` }),
    );
  });
  replace("identities", h("div", {}, h("div", { class: "muted" }, `trust domain ${answer.trust_domain}`), table(headers, rows)));
}

export async function refreshProxies() {
  await Promise.all([refreshSync(), refreshIdentities()]);
}
