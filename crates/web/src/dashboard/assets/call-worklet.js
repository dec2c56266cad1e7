// The audio thread of "Call this agent": the microphone in, the agent's voice out, both in
// the wire format of a phone call (G.711 mu-law, 8 kHz, 20 ms frames), so the call goes
// through exactly the same call actor as one from Twilio.
//
// In: the context's rate (often 48 kHz) is low-passed below 3.4 kHz with a windowed-sinc
// filter and read at 8 kHz, then mu-law encoded; every 160 samples (20 ms) go to the page.
// Out: mu-law from the page is decoded into a queue and played, read at the context's rate
// by linear interpolation; `clear` empties the queue (the caller barged in). The page is told
// how many 8 kHz samples have been played, so it can answer the marks that follow them.

const RATE = 8000;
const FRAME = 160;

function muLawEncode(x) {
  // ITU-T G.711, from a float in [-1, 1].
  let s = Math.max(-1, Math.min(1, x)) * 32767;
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s = Math.min(s + 0x84, 32635);
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

const DECODE = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const sign = u & 0x80;
  const exp = (u >> 4) & 0x07;
  const mant = u & 0x0f;
  let s = (((mant << 3) + 0x84) << exp) - 0x84;
  DECODE[i] = (sign ? -s : s) / 32768;
}

function lowPass(cutoff, rate, taps) {
  const h = new Float32Array(taps);
  const m = (taps - 1) / 2;
  const fc = cutoff / rate;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const n = i - m;
    const sinc = n === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * n) / (Math.PI * n);
    const w = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

class CallProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / RATE; // input samples per 8 kHz sample
    this.taps = lowPass(3400, sampleRate, 63);
    this.hist = new Float32Array(this.taps.length);
    this.histPos = 0;
    this.next = 0; // input position of the next 8 kHz sample
    this.consumed = 0; // input samples seen
    this.frame = new Uint8Array(FRAME);
    this.framePos = 0;
    this.queue = [];
    this.head = null;
    this.headPos = 0;
    this.outPhase = 0;
    this.played = 0;
    this.reported = 0;
    this.level = 0;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "play") {
        const f = new Float32Array(m.mulaw.length);
        for (let i = 0; i < f.length; i++) f[i] = DECODE[m.mulaw[i]];
        this.queue.push(f);
      } else if (m.type === "clear") {
        this.queue = [];
        this.head = null;
      }
    };
  }

  filtered() {
    const n = this.taps.length;
    let acc = 0;
    for (let i = 0; i < n; i++) acc += this.taps[i] * this.hist[(this.histPos + i) % n];
    return acc;
  }

  capture(input) {
    const n = this.hist.length;
    for (let i = 0; i < input.length; i++) {
      this.hist[this.histPos] = input[i];
      this.histPos = (this.histPos + 1) % n;
      this.consumed++;
      while (this.next < this.consumed) {
        this.frame[this.framePos++] = muLawEncode(this.filtered());
        this.next += this.step;
        if (this.framePos === FRAME) {
          this.port.postMessage({ type: "frame", mulaw: this.frame.slice() });
          this.framePos = 0;
        }
      }
    }
  }

  sample() {
    while (!this.head || this.headPos >= this.head.length) {
      if (this.queue.length === 0) {
        this.head = null;
        return null;
      }
      this.head = this.queue.shift();
      this.headPos = 0;
    }
    const a = this.head[this.headPos];
    const b = this.headPos + 1 < this.head.length ? this.head[this.headPos + 1] : a;
    return a + (b - a) * this.outPhase;
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) this.capture(input);
    const out = outputs[0];
    const ch = out[0];
    let energy = 0;
    for (let i = 0; i < ch.length; i++) {
      const v = this.sample();
      ch[i] = v === null ? 0 : v;
      if (v !== null) {
        energy += v * v;
        this.outPhase += 1 / this.step;
        while (this.outPhase >= 1) {
          this.outPhase -= 1;
          this.headPos++;
          this.played++;
        }
      }
    }
    for (let c = 1; c < out.length; c++) out[c].set(ch);
    this.level = Math.max(this.level * 0.9, Math.sqrt(energy / ch.length));
    if (this.played - this.reported >= 80 || (this.played !== this.reported && !this.head)) {
      this.reported = this.played;
      this.port.postMessage({ type: "played", samples: this.played, level: this.level });
    }
    return true;
  }
}

registerProcessor("switchboard-call", CallProcessor);
