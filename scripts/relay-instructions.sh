#!/usr/bin/env bash
# Counts the user-space instructions a server binary spends per relayed media frame, under
# valgrind's callgrind: a figure that depends far less on the machine's load than CPU time
# (BENCHMARKS.md, issue 22). Runs 10 echo-mode calls with switchboard-loadgen, zeroes the
# counters once the calls run, dumps them 20 s later, and divides by the frames relayed in that
# window (read from /metrics). Needs valgrind, curl and ss.
#
#   scripts/relay-instructions.sh target/release/switchboard [target/release/switchboard-loadgen]
set -euo pipefail
server="$(realpath "$1")"
loadgen="$(realpath "${2:-target/release/switchboard-loadgen}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/server" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/cg.out "$server" "\$@"
EOF
chmod +x "$work/server"
frames() { # the frames relayed so far, in and out
    curl -sf "http://$1/metrics" |
        awk '/^switchboard_voice_frames_(in|out)_total/ { s += $2 } END { print s + 0 }'
}
"$loadgen" --binary "$work/server" --calls 10 --seconds 60 > "$work/loadgen.txt" 2>&1 &
gen=$!
# Under valgrind the server takes a while to start and to connect the calls.
sleep 40
pid="$(pgrep -f "valgrind.bin.*$work/cg.out" | head -1)"
addr="$(ss -ltnp | grep "pid=$pid," | grep -o '127.0.0.1:[0-9]*' | head -1)"
before="$(frames "$addr")"
callgrind_control --zero "$pid" > /dev/null 2>&1
sleep 20
callgrind_control --dump=window "$pid" > /dev/null 2>&1
after="$(frames "$addr")"
wait "$gen"
total="$(awk '/^summary:/ { print $2 }' "$work/cg.out.1")"
memset="$(callgrind_annotate --threshold=100 "$work/cg.out.1" 2> /dev/null |
    awk '/__memset/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')"
n=$((after - before))
echo "frames relayed: $n"
echo "user-space instructions: $total (memset: $memset)"
echo "per frame: $((total / n)); without memset: $(((total - memset) / n))"
