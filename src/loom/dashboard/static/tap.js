// Live tap: GET /v1/tap streams one JSON event a line; rows appear as they arrive.

import { streamNDJSON } from "./api.js";
import { empty, h, ms, replace, table, td } from "./dom.js";

const MAX_ROWS = 1000;
const HEADERS = ["TIME", "DIR", "SOURCE", "DESTINATION", "METHOD", "AUTHORITY", "PATH", { label: "STATUS", num: true }, { label: "LATENCY", num: true }, "FLAGS", "TRACE"];

let controller = null;
let count = 0;

function time(t) {
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + `.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function eventRow(e) {
  const status = Number(e.status);
  const cls = status >= 500 || status === 0 ? "bad" : status >= 400 ? "warn" : "ok";
  return h(
    "tr",
    { "data-tap-event": e.request_id || "" },
    td(e.time ? time(e.time) : "–"),
    td(e.direction === "inbound" ? "in" : e.direction === "outbound" ? "out" : e.direction || ""),
    td(e.source || ""),
    td(e.destination || ""),
    td(e.method || ""),
    td(e.authority || ""),
    td(e.path || ""),
    td(e.status ?? "", { class: `num ${cls}` }),
    td(ms(e.latency_ms), { class: "num" }),
    td(e.flags || e.response_flags || "-"),
    td(e.trace_id ? h("code", {}, String(e.trace_id).slice(0, 16)) : ""),
  );
}

function setState(running, message) {
  document.getElementById("tap-toggle").textContent = running ? "Stop" : "Start";
  replace("tap-status", message);
}

async function start(form) {
  const params = Object.fromEntries(new FormData(form).entries());
  const body = h("tbody");
  const grid = table(HEADERS, []);
  grid.querySelector("tbody").replaceWith(body);
  replace("tap", grid);
  count = 0;
  controller = new AbortController();
  setState(true, "tapping… waiting for requests");
  try {
    await streamNDJSON(
      "/api/v1/tap",
      params,
      (event) => {
        count += 1;
        body.prepend(eventRow(event));
        while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
        replace("tap-status", `tapping… ${count} events`);
      },
      controller.signal,
    );
    setState(false, `stopped: ${count} events (the session ended)`);
  } catch (error) {
    if (error.name === "AbortError") setState(false, `stopped: ${count} events`);
    else if (error.status === 404) {
      setState(false, "");
      replace("tap", empty("This control plane does not serve /v1/tap yet."));
    } else setState(false, `error: ${error.message}`);
  } finally {
    controller = null;
    if (!count && !document.querySelector("#tap .empty")) replace("tap", empty("No requests matched while tapping."));
  }
}

export function setupTap() {
  const form = document.getElementById("tap-form");
  replace("tap", empty("Press Start to watch requests as they happen (filters are optional)."));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (controller) controller.abort();
    else start(form);
  });
}
