// The assistant page: posts a message and reads the answer as newline-delimited JSON events,
// showing each tool as it starts and finishes, each proposed change as a card with
// "Confirm" / "Cancel" (plain forms posting back to the server), then the reply.
"use strict";

(function () {
  const root = document.getElementById("assistant");
  if (!root) return;
  const form = document.getElementById("assistant-form");
  const input = document.getElementById("assistant-input");
  const send = document.getElementById("assistant-send");
  const log = document.getElementById("assistant-log");
  const actions = document.getElementById("actions");
  const error = document.getElementById("assistant-error");
  const csrf = document.body.dataset.csrf;
  const session = root.dataset.session;
  const running = {};

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function turn(cls, who, text) {
    const li = el("li", "turn " + cls);
    li.appendChild(el("div", "meta", who));
    li.appendChild(el("div", "bubble", text));
    log.appendChild(li);
    return li;
  }

  function toolStarted(t) {
    const li = el("li", "turn tool running");
    const d = el("details");
    const s = el("summary", "", "Tool ");
    s.appendChild(el("code", "", t.name));
    s.appendChild(el("span", "muted", " running…"));
    d.appendChild(s);
    d.appendChild(el("p", "", "Arguments: " + JSON.stringify(t.arguments)));
    li.appendChild(d);
    log.appendChild(li);
    (running[t.name] = running[t.name] || []).push(li);
  }

  function toolFinished(t) {
    const li = (running[t.name] || []).shift();
    if (!li) return;
    li.className = "turn tool " + t.status;
    li.dataset.tool = t.name;
    li.dataset.status = t.status;
    li.querySelector("summary .muted").textContent = " " + t.status;
    li.querySelector("details").appendChild(el("pre", "json", JSON.stringify(t.output, null, 2)));
  }

  function button(action, id, label, cls) {
    const f = el("form", "inline");
    f.method = "post";
    f.action = "/assistant/actions/" + id + "/" + action;
    for (const [name, value] of [["_csrf", csrf], ["session", session]]) {
      const i = el("input");
      i.type = "hidden";
      i.name = name;
      i.value = value;
      f.appendChild(i);
    }
    const b = el("button", cls, label);
    b.type = "submit";
    f.appendChild(b);
    return f;
  }

  function card(a) {
    const div = el("div", "card action");
    div.id = "action-" + a.id;
    div.dataset.action = a.id;
    div.dataset.status = a.status;
    const p = el("p");
    p.appendChild(el("span", "badge live", a.status));
    p.appendChild(document.createTextNode(" "));
    p.appendChild(el("strong", "", a.summary));
    div.appendChild(p);
    if (a.preview && a.preview.instructions_diff) div.appendChild(el("pre", "diff", a.preview.instructions_diff));
    if (a.preview && a.preview.first_recipients) {
      div.appendChild(el("p", "", a.preview.count + " recipients; the first:"));
      const ul = el("ul", "recipients");
      a.preview.first_recipients.forEach(function (r) { ul.appendChild(el("li", "", (r.name || "") + " " + r.number)); });
      div.appendChild(ul);
    }
    const d = el("details");
    d.appendChild(el("summary", "", "Details"));
    d.appendChild(el("pre", "json", JSON.stringify(a.preview, null, 2)));
    div.appendChild(d);
    div.appendChild(el("p", "muted", "Nothing happens until you confirm."));
    div.appendChild(button("confirm", a.id, "Confirm", "primary confirm"));
    div.appendChild(button("cancel", a.id, "Cancel", "cancel"));
    actions.appendChild(div);
  }

  // A decision made in the conversation (the model's confirm_action or cancel_action) shows
  // on the action's card.
  function decided(t) {
    const a = t.output && t.output.action;
    if (!a || !a.id) return;
    const div = document.getElementById("action-" + a.id);
    if (!div) return;
    div.dataset.status = a.status;
    const badge = div.querySelector(".badge");
    if (badge) badge.textContent = a.status;
    div.querySelectorAll("form, p.muted").forEach(function (f) { f.remove(); });
  }

  function handle(ev) {
    if (ev.type === "tool_started") toolStarted(ev);
    else if (ev.type === "tool_finished") {
      toolFinished(ev);
      if (ev.name === "confirm_action" || ev.name === "cancel_action") decided(ev);
    } else if (ev.type === "action") card(ev);
    else if (ev.type === "heard") turn("user", "You (spoken)", ev.text);
    else if (ev.type === "done") {
      turn("agent", "Assistant", ev.reply);
      document.body.dataset.assistantTurns = String(Number(document.body.dataset.assistantTurns || 0) + 1);
    } else if (ev.type === "error") {
      error.textContent = ev.message;
      error.hidden = false;
    }
  }

  // Spoken sessions: their words, tools and proposals come from the voice socket.
  const talk = document.getElementById("assistant-voice");
  if (talk) talk.addEventListener("switchboard:event", function (e) { handle(e.detail); });

  // Confirm and Cancel post in the background while talking, so the conversation goes on:
  // the card is replaced by the one the server renders after the decision.
  actions.addEventListener("submit", function (e) {
    const f = e.target;
    if (!window.switchboardCall || window.switchboardCall.state !== "live") return;
    e.preventDefault();
    const card = f.closest(".action");
    fetch(f.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(f)).toString(),
    })
      .then(function (r) { return r.text().then(function (html) { return { r: r, html: html }; }); })
      .then(function (x) {
        const doc = new DOMParser().parseFromString(x.html, "text/html");
        const fresh = card && doc.getElementById(card.id);
        if (fresh) card.replaceWith(document.importNode(fresh, true));
        // A stale action comes back with a new preview to confirm instead.
        doc.querySelectorAll("#actions .action").forEach(function (c) {
          if (!document.getElementById(c.id)) actions.appendChild(document.importNode(c, true));
        });
        const flash = doc.querySelector(".flash");
        if (flash) {
          error.textContent = flash.textContent;
          error.hidden = false;
        }
      })
      .catch(function (err) {
        error.textContent = "The decision could not be sent: " + err.message;
        error.hidden = false;
      });
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    error.hidden = true;
    send.disabled = true;
    turn("user", "You", text);
    input.value = "";
    fetch("/assistant/message", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ session_id: session, message: text }),
    })
      .then(function (r) {
        if (!r.ok || !r.body) return r.text().then(function (t) { throw new Error(t || r.status); });
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            let nl;
            while ((nl = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (line.trim()) handle(JSON.parse(line));
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function (err) {
        error.textContent = "The message could not be sent: " + err.message;
        error.hidden = false;
      })
      .finally(function () {
        send.disabled = false;
        input.focus();
        // The address names the session, so a reload (after a decision) comes back to it.
        if (!/[?&]session=/.test(window.location.search)) {
          history.replaceState(null, "", "/assistant?session=" + encodeURIComponent(session));
        }
      });
  });
})();
