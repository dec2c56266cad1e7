// "Call this agent" and "Talk" to the assistant: the page side. It asks the server for a
// session, opens the media WebSocket and speaks to it exactly as Twilio Media Streams does
// (connected, start with the call's one-time parameters, 20 ms mu-law media frames with their
// timestamps, mark echoes once the audio before a mark has been played, and every pending
// mark echoed at once on clear, as Twilio does), so an agent's call runs through the same
// call actor, tools and transcript as a phone call. Frames `{"event": "assistant", "data"}`
// (the assistant's words and tools) are handed to the page as `switchboard:event` events on
// the panel. The audio work happens in call-worklet.js.
(function () {
  const box = document.getElementById("web-call") || document.getElementById("assistant-voice");
  if (!box) return;
  const prefix = box.id;
  const button = document.getElementById(prefix + "-start");
  const hang = document.getElementById(prefix + "-hangup");
  const state = document.getElementById(prefix + "-state");
  const csrf = document.body.dataset.csrf;
  const stats = { sent: 0, received: 0, played: 0, level: 0, marks: 0, state: "idle", call_id: null };
  window.switchboardCall = stats;
  const live = { connecting: "Connecting…", live: box.id === "web-call" ? "On the call" : "Listening: speak to the assistant" };

  function show(s, text) {
    stats.state = s;
    state.textContent = text;
    state.dataset.state = s;
    button.hidden = s === "connecting" || s === "live";
    hang.hidden = !(s === "connecting" || s === "live");
  }

  function b64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function unb64(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  let current = null;

  async function start() {
    show("connecting", live.connecting);
    let ctx, mic, ws;
    try {
      const res = await fetch(box.dataset.start, {
        method: "POST",
        headers: { "x-csrf-token": csrf, "content-type": "application/json" },
        body: box.dataset.body || "{}",
      });
      const call = await res.json();
      if (!res.ok) throw new Error(call.error || "the call could not start");
      stats.call_id = call.call_id;
      if (!navigator.mediaDevices || !window.AudioWorkletNode) {
        throw new Error("this browser gives pages the microphone only over https (or on localhost)");
      }
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
      });
      ctx = new AudioContext();
      await ctx.audioWorklet.addModule("/assets/call-worklet.js");
      const node = new AudioWorkletNode(ctx, "switchboard-call", { numberOfInputs: 1, outputChannelCount: [1] });
      ctx.createMediaStreamSource(mic).connect(node);
      node.connect(ctx.destination);
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(scheme + "//" + location.host + call.media_path);
      current = { ctx, mic, ws, node };
      const sid = call.stream_sid;
      let seq = 0;
      let chunk = 0;
      let enqueued = 0;
      let marks = [];
      const send = (o) => {
        seq++;
        o.sequenceNumber = String(seq);
        o.streamSid = sid;
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(o));
      };
      const echo = (name) => {
        stats.marks++;
        send({ event: "mark", mark: { name } });
      };
      ws.onopen = () => {
        ws.send(JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }));
        send({
          event: "start",
          start: {
            streamSid: sid,
            accountSid: "",
            callSid: call.call_sid,
            tracks: ["inbound"],
            customParameters: call.parameters,
            mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
          },
        });
        show("live", live.live);
        node.port.onmessage = (e) => {
          const m = e.data;
          if (m.type === "frame") {
            chunk++;
            stats.sent++;
            send({
              event: "media",
              media: { track: "inbound", chunk: String(chunk), timestamp: String((chunk - 1) * 20), payload: b64(m.mulaw) },
            });
          } else if (m.type === "played") {
            stats.played = m.samples;
            stats.level = Math.max(stats.level, m.level);
            while (marks.length && marks[0].at <= m.samples) echo(marks.shift().name);
          }
        };
      };
      ws.onmessage = (e) => {
        let m;
        try {
          m = JSON.parse(e.data);
        } catch (_) {
          return;
        }
        if (m.event === "media" && m.media && m.media.payload) {
          const bytes = unb64(m.media.payload);
          stats.received += bytes.length;
          enqueued += bytes.length;
          node.port.postMessage({ type: "play", mulaw: bytes });
        } else if (m.event === "mark" && m.mark) {
          if (stats.played >= enqueued) echo(m.mark.name);
          else marks.push({ name: m.mark.name, at: enqueued });
        } else if (m.event === "assistant" && m.data) {
          box.dispatchEvent(new CustomEvent("switchboard:event", { detail: m.data }));
        } else if (m.event === "clear") {
          node.port.postMessage({ type: "clear" });
          // What was queued is dropped: count it as gone, and answer its marks now.
          enqueued = stats.played;
          const pending = marks;
          marks = [];
          pending.forEach((k) => echo(k.name));
        }
      };
      ws.onclose = () => stop("ended", box.id === "web-call" ? "Call ended" : "Stopped talking.");
      ws.onerror = () => stop("failed", "The connection failed");
    } catch (err) {
      stop("failed", "Could not start the call: " + (err && err.message ? err.message : err));
      if (ws) ws.close();
    }
  }

  function stop(s, text) {
    if (current) {
      const { ctx, mic, ws } = current;
      current = null;
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: "stop", streamSid: "", stop: {} }));
        ws.close();
      }
      mic.getTracks().forEach((t) => t.stop());
      ctx.close();
    }
    show(s, text);
    const link = document.getElementById(prefix + "-link");
    if (stats.call_id && link) {
      link.href = "/calls/" + stats.call_id;
      link.hidden = false;
    }
  }

  button.addEventListener("click", start);
  hang.addEventListener("click", () => stop("ended", box.id === "web-call" ? "Call ended" : "Stopped talking."));
})();
