// Switchboard dashboard: local times, running call timers, confirmations, live refresh over
// server-sent events, and the agent "Try it" chat. No framework, no build step.
"use strict";

function pad(n) { return n < 10 ? "0" + n : "" + n; }

function fmtDuration(secs) {
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600), m = Math.floor(secs / 60) % 60, s = secs % 60;
  return h > 0 ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
}

// Times in the organization's time zone (the page's data-tz), else the reader's own.
let zoned = null;
function zonedParts(d) {
  const tz = document.body && document.body.dataset.tz;
  if (tz && zoned === null) {
    try {
      zoned = new Intl.DateTimeFormat("en-US", {
        timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    } catch (_) {
      zoned = false;
    }
  }
  if (!zoned) {
    return { year: d.getFullYear(), month: pad(d.getMonth() + 1), day: pad(d.getDate()),
      hour: pad(d.getHours()), minute: pad(d.getMinutes()), second: pad(d.getSeconds()) };
  }
  const p = {};
  zoned.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
  return p;
}

function localTimes(root) {
  const tz = document.body && document.body.dataset.tz;
  root.querySelectorAll("time[datetime]").forEach(function (t) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) return;
    const p = zonedParts(d);
    t.title = t.getAttribute("datetime") + (tz ? " (shown in " + tz + ")" : "");
    t.textContent = p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
  });
}

function tickTimers() {
  const now = Date.now();
  document.querySelectorAll(".timer[data-since]").forEach(function (t) {
    t.textContent = fmtDuration((now - Number(t.dataset.since)) / 1000);
  });
}

function bindConfirms(root) {
  root.querySelectorAll("form[data-confirm]").forEach(function (f) {
    if (f.dataset.bound) return;
    f.dataset.bound = "1";
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
}

// Re-renders #live from the server when an event of interest arrives (debounced), so the
// page shows exactly what a reload would, without one.
function live() {
  const prefixes = (document.body.dataset.live || "").split(",").filter(Boolean);
  const region = document.getElementById("live");
  if (!prefixes.length || !region || !window.EventSource) return;
  let timer = null;
  function refresh() {
    timer = null;
    fetch(window.location.href, { credentials: "same-origin", headers: { "x-live-refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("live");
        const current = document.getElementById("live");
        if (fresh && current) {
          // A reader at the newest message stays there as new ones arrive.
          const following = atBottom();
          current.innerHTML = fresh.innerHTML;
          if (following && document.querySelector(".chat")) toNewest();
          localTimes(current);
          bindConfirms(current);
          tickTimers();
          document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
        }
      })
      .catch(function () { /* the next event tries again */ });
  }
  // From what the page showed when it was rendered: an event committed meanwhile still comes.
  const since = document.body.dataset.liveSince;
  const es = new EventSource(since ? "/live?since=" + encodeURIComponent(since) : "/live");
  // Browsers allow few connections per host; a stream must not outlive its page.
  window.addEventListener("pagehide", function () { es.close(); });
  es.onopen = function () { document.body.dataset.liveConnected = "1"; };
  es.onmessage = function (m) {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (!prefixes.some(function (p) { return ev.type.indexOf(p) === 0; })) return;
    const subject = region.dataset.subject;
    if (subject && ev.subject !== subject) return;
    if (!timer) timer = setTimeout(refresh, 200);
  };
}

function atBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 80;
}

// A thread opens at its newest message (above the reply form), also after sending.
function toNewest() {
  window.scrollTo(0, document.documentElement.scrollHeight);
}

function tryIt() {
  const panel = document.getElementById("try-it");
  if (!panel) return;
  const form = document.getElementById("try-form");
  const input = document.getElementById("try-input");
  const log = document.getElementById("try-log");
  const error = document.getElementById("try-error");
  const session = "dash-" + Math.random().toString(36).slice(2, 12);
  function add(cls, who, text) {
    const li = document.createElement("li");
    li.className = "turn " + cls;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = who;
    const b = document.createElement(cls === "tool" ? "pre" : "div");
    b.className = cls === "tool" ? "json" : "bubble";
    b.textContent = text;
    li.appendChild(meta);
    li.appendChild(b);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    error.hidden = true;
    add("contact", "You", text);
    const button = form.querySelector("button");
    button.disabled = true;
    fetch("/agents/" + panel.dataset.agent + "/try", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": document.body.dataset.csrf },
      body: JSON.stringify({ session_id: session, message: text }),
    })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) throw new Error((res.body.error && res.body.error.message) || "failed");
        // What a person needs from a tool call: its name, what it was asked and what it
        // answered (the model's internal call id is left out).
        (res.body.tool_calls || []).forEach(function (t) {
          const status = t.status && t.status !== "ok" ? " (" + t.status + ")" : "";
          add("tool", "Tool " + (t.name || "") + status,
            "Asked: " + JSON.stringify(t.arguments || {}, null, 2) +
            "\nAnswered: " + JSON.stringify(t.output === undefined ? null : t.output, null, 2));
        });
        add("agent", "Agent", res.body.reply);
      })
      .catch(function (err) { error.textContent = err.message; error.hidden = false; })
      .finally(function () { button.disabled = false; input.focus(); });
  });
}

// A file chosen in `<input type=file data-fills=ID>` is read into the textarea ID (the CSV of a
// new campaign), so the form stays a plain form post.
function fileFills() {
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      const target = document.getElementById(input.dataset.fills);
      const file = input.files && input.files[0];
      if (!target || !file) return;
      file.text().then(function (text) {
        target.value = text;
        document.body.dataset.fileLoaded = String(Number(document.body.dataset.fileLoaded || 0) + 1);
      });
    });
  });
}

// While #live shows something still under way (`data-pending`, e.g. a knowledge source
// being indexed, which no event announces), it is re-rendered from the server every 1.5 s
// until nothing is pending.
function pending() {
  if (!document.querySelector("#live [data-pending]")) return;
  setTimeout(function () {
    fetch(window.location.href, { credentials: "same-origin", headers: { "x-live-refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        const current = document.getElementById("live");
        if (fresh && current) {
          current.innerHTML = fresh.innerHTML;
          localTimes(current);
          document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
        }
      })
      .catch(function () { /* tried again below */ })
      .finally(pending);
  }, 1500);
}

document.addEventListener("DOMContentLoaded", function () {
  localTimes(document);
  bindConfirms(document);
  tickTimers();
  setInterval(tickTimers, 1000);
  live();
  pending();
  tryIt();
  fileFills();
  if (document.querySelector(".chat #transcript")) toNewest();
});
