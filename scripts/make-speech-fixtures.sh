#!/usr/bin/env bash
# Regenerates the speech fixtures the voice tests play: raw G.711 mu-law, 8 kHz, mono, no
# header (exactly what Twilio Media Streams carry). Needs espeak-ng and sox
# (apt-get install espeak-ng sox). The outputs are committed; tests never run this.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/crates/testkit/fixtures"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say() { # name, text
    espeak-ng -v en-us -s 165 -w "$tmp/$1.wav" "$2"
    # 8 kHz mono mu-law, headerless; pad 300 ms of silence after the words so a VAD sees
    # the end of the turn.
    sox "$tmp/$1.wav" -r 8000 -c 1 -e mu-law -t raw "$out/$1.ulaw" pad 0 0.3
    echo "$out/$1.ulaw: $(stat -c %s "$out/$1.ulaw") bytes"
}
say caller_booking "Hello, I would like to book an appointment for Monday at ten in the morning, please."
say caller_interrupt "Wait, sorry, can I ask something else?"
say agent_reply "Of course. Our opening hours are nine to five on weekdays, and I can book you in for Monday at ten. Shall I go ahead and reserve that time for you now?"
say agent_short "Thanks for calling. Goodbye!"
