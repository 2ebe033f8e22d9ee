// entitle dashboard: local times with UTC on hover, and the alerts page's live feed.
// No library; new content is built with textContent, never parsed as HTML.
"use strict";

const localFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  timeZoneName: "short",
});

const dayFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
});

function localizeTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    if (!el.title) el.title = el.textContent;
    el.textContent = (el.hasAttribute("data-day") ? dayFormat : localFormat).format(at);
  }
}

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function utcText(at) {
  return at.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

// Charts (the SLA timeline): axis labels in the viewer's zone, and each <title> (state and
// span, or one instant) in local time with UTC beside it.
function localizeCharts(root) {
  for (const el of root.querySelectorAll("svg text[data-at]")) {
    const at = new Date(el.dataset.at);
    if (Number.isNaN(at.getTime())) continue;
    el.textContent = (el.dataset.format === "day" ? dayFormat : clockFormat).format(at);
  }
  for (const el of root.querySelectorAll("svg title[data-label]")) {
    const from = new Date(el.dataset.from || el.dataset.at);
    if (Number.isNaN(from.getTime())) continue;
    let local = localFormat.format(from);
    let utc = utcText(from);
    if (el.dataset.from) {
      const to = el.dataset.to ? new Date(el.dataset.to) : null;
      local += " – " + (to ? localFormat.format(to) : "now");
      utc += " – " + (to ? utcText(to) : "now");
    }
    el.textContent = el.dataset.label + ": " + local + " (" + utc + ")";
  }
}

function timeElement(iso) {
  const el = document.createElement("time");
  const at = new Date(iso);
  el.setAttribute("datetime", iso);
  el.title = utcText(at);
  el.textContent = localFormat.format(at);
  return el;
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function kindLabel(kind) {
  return String(kind || "").replace(/^ALERT_KIND_/, "").toLowerCase().replace(/_/g, " ");
}

function alertItem(alert, base) {
  const li = document.createElement("li");
  li.className = "alert fresh";
  li.dataset.cursor = alert.cursor;
  const when = span("when", "");
  when.appendChild(timeElement(alert.occurredAt));
  li.appendChild(when);
  li.appendChild(span("kind", kindLabel(alert.kind)));
  const link = document.createElement("a");
  link.className = "contract";
  link.href = base + "/contract?id=" + encodeURIComponent(alert.contractId);
  link.textContent = alert.contractId;
  li.appendChild(link);
  li.appendChild(span("customer", alert.customerId));
  li.appendChild(span("message", alert.message));
  return li;
}

function liveAlerts() {
  const status = document.getElementById("live-status");
  const list = document.getElementById("alerts");
  if (!status || !list || !status.dataset.stream || !window.EventSource) return;
  const base = status.dataset.stream.replace(/\/alerts\/stream.*$/, "");
  const source = new EventSource(status.dataset.stream);
  source.onopen = () => {
    status.className = "live connected";
    status.textContent = "Live: new alerts appear at the top.";
  };
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    if (list.querySelector(`li[data-cursor="${CSS.escape(String(alert.cursor))}"]`)) return;
    list.insertBefore(alertItem(alert, base), list.firstChild);
    const empty = document.getElementById("alerts-empty");
    if (empty) empty.hidden = true;
  });
  source.addEventListener("error", (event) => {
    if (event.data) {  // the server ended the stream with a reason
      status.className = "live dropped";
      status.textContent = "Live updates stopped: " + JSON.parse(event.data).message;
      source.close();
      return;
    }
    status.className = "live dropped";
    status.textContent = "Connection lost; reconnecting (nothing is missed)…";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  localizeCharts(document);
  liveAlerts();
});
