#!/usr/bin/env bash
# Side-by-side comparison of two MQTT brokers on loopback (default: Bastion vs Mosquitto).
#
# Builds `bastion` in release mode, then for every scenario starts each broker fresh with
# equivalent settings, runs the same load against it, stops it, and finally prints a markdown
# table with both figures and their ratio. Each broker runs alone while it is measured.
#
#   benchmarks/compare.sh [--a bastion|mosquitto] [--b bastion|mosquitto] [--quick]
#                         [--duration S] [--warmup S] [--only LIST] [--no-build] [--out DIR]
#                         [--connections N] [--configuration release|debug]
#
# --only takes a comma-separated subset of: fanout,fanin,pairs,latency,tls,acl,independent,conn,durable,sparkplug
# (durable runs Bastion only: the same QoS 1 load with clean and with persistent sessions;
# sparkplug runs Bastion only: NDATA from 1,000 edge nodes next to the same fan-in on plain topics).
# Results (JSON per run, broker logs, table.md) stay in --out (default: a temporary directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
A=bastion
B=mosquitto
DURATION=10
WARMUP=2
ONLY="fanout,fanin,pairs,latency,tls,acl,independent,conn,durable,sparkplug"
BUILD=1
CONFIGURATION=release
OUT=""
CONNECTIONS=10000
INDEPENDENT_MESSAGES=200000

while [[ $# -gt 0 ]]; do
    case "$1" in
        --a) A="$2"; shift 2 ;;
        --b) B="$2"; shift 2 ;;
        --quick) DURATION=3; WARMUP=1; INDEPENDENT_MESSAGES=50000; shift ;;
        --duration) DURATION="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --configuration) CONFIGURATION="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for broker in "$A" "$B"; do
    case "$broker" in bastion|mosquitto) ;; *) echo "compare.sh: broker must be bastion or mosquitto, got $broker" >&2; exit 2 ;; esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

# 10,000 connections need 10,000+ descriptors in the generator and in each broker (they inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt $((CONNECTIONS + 1000)) ]]; then
    echo "compare.sh: open-file limit $(ulimit -n) is too low for $CONNECTIONS connections" >&2
    exit 1
fi

OUT="${OUT:-$(mktemp -d /tmp/bastion-compare.XXXXXX)}"
mkdir -p "$OUT/results" "$OUT/logs"
WORK="$OUT/work"
mkdir -p "$WORK"

if [[ $BUILD == 1 ]]; then
    echo "building bastion ($CONFIGURATION)…" >&2
    (cd "$ROOT" && swift build -c "$CONFIGURATION" --product bastion >&2)
fi
BIN="$(cd "$ROOT" && swift build -c "$CONFIGURATION" --show-bin-path)/bastion"
[[ -x "$BIN" ]] || { echo "compare.sh: $BIN not built" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Fixtures: a CA and a server certificate for 127.0.0.1, and an ACL that every publish is checked
# against (Mosquitto's format, which Bastion reads unchanged): 100 users' rules to skip, then the
# anonymous rule that grants the bench topics.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/san.ext" -out "$WORK/server.pem" 2>/dev/null
{
    echo "topic readwrite bench/#"
    for i in $(seq 1 100); do
        echo "user sensor$i"
        echo "topic write plant/line$i/+/telemetry"
        echo "topic read plant/line$i/commands/#"
    done
} > "$WORK/acl"
# Mosquitto started as root drops to its own user: it must be able to read the fixtures. Bastion
# refuses a private key others can read, so Mosquitto gets its own copy of the key.
chmod 0755 "$OUT" "$WORK"
chmod 0644 "$WORK"/*
chmod 0600 "$WORK/server.key" "$WORK/ca.key"
cp "$WORK/server.key" "$WORK/mosquitto-server.key"
if id mosquitto >/dev/null 2>&1 && chown mosquitto "$WORK/mosquitto-server.key" 2>/dev/null; then
    chmod 0600 "$WORK/mosquitto-server.key"
else
    chmod 0644 "$WORK/mosquitto-server.key"
fi

# ---------------------------------------------------------------------------------------------
# Brokers. Equivalent settings: loopback listener, anonymous access, no persistence, in-flight
# window 32 and 1000 queued messages per client, 256 KiB packets, TCP_NODELAY, no connection cap.
# Below the ephemeral range (32768+), so no client socket can hold a listener's port.
PORT_BASE=$((10000 + RANDOM % 20000))
BROKER_PID=""
BROKER_PORT=""

start_broker() { # NAME VARIANT(plain|tls|acl)
    local name="$1" variant="$2"
    BROKER_PORT=$((PORT_BASE++))
    local log="$OUT/logs/$name-$variant-$BROKER_PORT.log"
    case "$name" in
        mosquitto)
            local conf="$WORK/mosquitto-$variant.conf"
            {
                echo "per_listener_settings false"
                echo "listener $BROKER_PORT 127.0.0.1"
                if [[ $variant == tls ]]; then
                    echo "cafile $WORK/ca.pem"
                    echo "certfile $WORK/server.pem"
                    echo "keyfile $WORK/mosquitto-server.key"
                fi
                echo "allow_anonymous true"
                [[ $variant == acl ]] && echo "acl_file $WORK/acl"
                echo "persistence false"
                echo "max_connections -1"
                echo "max_inflight_messages 32"
                echo "max_queued_messages 1000"
                echo "max_packet_size 262144"
                echo "set_tcp_nodelay true"
                echo "log_dest stderr"
                echo "log_type error"
                echo "log_type warning"
            } > "$conf"
            mosquitto -c "$conf" > "$log" 2>&1 &
            ;;
        bastion)
            local conf="$WORK/bastion-$variant.yaml" scheme=mqtt
            [[ $variant == tls ]] && scheme=mqtts
            {
                echo "listeners:"
                echo "  - url: $scheme://127.0.0.1:$BROKER_PORT"
                if [[ $variant == tls ]]; then
                    echo "    tls:"
                    echo "      cert: $WORK/server.pem"
                    echo "      key: $WORK/server.key"
                fi
                echo "auth:"
                echo "  allow_anonymous: true"
                [[ $variant == acl ]] && echo "  acl_file: $WORK/acl"
                echo "limits:"
                echo "  max_inflight: 32"
                echo "  max_queued_messages: 1000"
                echo "  max_packet_size: 262144"
                echo "  max_connections: $((CONNECTIONS + 1000))"
                echo "  max_connections_per_ip: $((CONNECTIONS + 1000))"
                echo "  connect_rate_per_ip: 1000000"
                # Abuse protection is for the internet, not for one load generator on loopback.
                echo "  connect_burst_per_ip: 1000000"
                echo "  flap_connections: 0"
                echo "  auth_failures_per_ip: 0"
                echo "  auth_failures_per_user: 0"
                echo "persistence:"
                echo "  data_dir: $WORK/bastion-data-$BROKER_PORT"
                echo "log_level: warning"
            } > "$conf"
            "$BIN" serve --config "$conf" > "$log" 2>&1 &
            ;;
    esac
    BROKER_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "compare.sh: $name ($variant) exited at start; log:" >&2; cat "$log" >&2; exit 1
        fi
        sleep 0.1
    done
    echo "compare.sh: $name ($variant) did not listen on $BROKER_PORT; log:" >&2; cat "$log" >&2; exit 1
}

stop_broker() {
    [[ -n "$BROKER_PID" ]] || return 0
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    sleep 0.5  # let sockets close before the next broker starts
}
trap stop_broker EXIT

# bench LABEL SLOT(a|b) VARIANT SCENARIO ARGS… → $OUT/results/LABEL-SLOT.json
bench() {
    local label="$1" slot="$2" variant="$3"; shift 3
    local name="$A"; [[ $slot == b ]] && name="$B"
    [[ -n "${BENCH_BROKER:-}" ]] && name="$BENCH_BROKER"
    start_broker "$name" "$variant"
    local tls=()
    [[ $variant == tls ]] && tls=(--tls --cafile "$WORK/ca.pem")
    echo "  $label: $name…" >&2
    if ! "$BIN" bench "$@" --port "$BROKER_PORT" "${tls[@]}" --broker-pid "$BROKER_PID" --json \
        > "$OUT/results/$label-$slot.json" 2> "$OUT/logs/bench-$label-$slot.err"; then
        echo "compare.sh: bench $label against $name failed:" >&2
        cat "$OUT/logs/bench-$label-$slot.err" >&2
    fi
    stop_broker
}

both() { # LABEL VARIANT SCENARIO ARGS…  (A then B)
    local label="$1" variant="$2"; shift 2
    bench "$label" a "$variant" "$@"
    bench "$label" b "$variant" "$@"
}

COMMON=(--duration "$DURATION" --warmup "$WARMUP" --size 64)

echo "results in $OUT" >&2
if wants fanout; then
    both fanout-q0 plain fanout --publishers 1 --subscribers 20 --qos 0 "${COMMON[@]}"
    both fanout-q1 plain fanout --publishers 1 --subscribers 20 --qos 1 "${COMMON[@]}"
fi
if wants fanin || wants tls || wants acl; then
    both fanin-q0 plain fanin --publishers 20 --subscribers 1 --qos 0 "${COMMON[@]}"
fi
if wants fanin; then
    both fanin-q1 plain fanin --publishers 20 --subscribers 1 --qos 1 "${COMMON[@]}"
fi
if wants pairs; then
    both pairs-q1 plain pairs --publishers 10 --qos 1 "${COMMON[@]}"
fi
if wants latency; then
    # Half of the reference broker's (Mosquitto's, or B's) maximum rate, in published messages/s.
    REF=b; [[ $A == mosquitto && $B != mosquitto ]] && REF=a
    rate_of() { # LABEL DELIVERIES_PER_MESSAGE → half the reference's publish rate
        python3 - "$OUT/results/$1-$REF.json" "$2" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(max(1, int(r["messages"]["receivedPerSecond"] / int(sys.argv[2]) / 2)))
except Exception:
    print(0)
PY
    }
    if ! wants fanout; then both fanout-q0 plain fanout --publishers 1 --subscribers 20 --qos 0 "${COMMON[@]}"; fi
    if ! wants fanin; then both fanin-q0 plain fanin --publishers 20 --subscribers 1 --qos 0 "${COMMON[@]}"; fi
    R=$(rate_of fanout-q0 20)
    [[ $R -gt 0 ]] && both fanout-q0-half plain fanout --publishers 1 --subscribers 20 --qos 0 --rate "$R" "${COMMON[@]}"
    R=$(rate_of fanin-q0 1)
    [[ $R -gt 0 ]] && both fanin-q0-half plain fanin --publishers 20 --subscribers 1 --qos 0 --rate "$R" "${COMMON[@]}"
fi
if wants tls; then
    both fanin-q0-tls tls fanin --publishers 20 --subscribers 1 --qos 0 "${COMMON[@]}"
fi
if wants acl; then
    both fanin-q0-acl acl fanin --publishers 20 --subscribers 1 --qos 0 "${COMMON[@]}"
fi
if wants independent; then
    # Only Mosquitto's own clients: mosquitto_pub -l sends one message per line as fast as it can,
    # mosquitto_sub prints the arrival time of each (-F %U); the rate is messages received over the
    # time from the first send to the last arrival (so a broker that drops messages is not charged
    # mosquitto_sub's wait for the ones that never come).
    python3 -c "import sys; sys.stdout.write(('x' * 63 + '\n') * $INDEPENDENT_MESSAGES)" > "$WORK/lines"
    for slot in a b; do
        name="$A"; [[ $slot == b ]] && name="$B"
        for qos in 0 1; do
            start_broker "$name" plain
            echo "  independent-q$qos: $name…" >&2
            mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -q "$qos" -t bench/independent -C "$INDEPENDENT_MESSAGES" \
                -W 60 -F %U > "$WORK/independent.out" 2>/dev/null &
            SUB=$!
            sleep 1  # the subscription is in place before the first message
            START=$(date +%s.%N)
            mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q "$qos" -t bench/independent -l < "$WORK/lines" \
                2> "$OUT/logs/independent-pub-$slot.err" || true
            wait "$SUB" || true
            python3 - "$START" "$WORK/independent.out" "$INDEPENDENT_MESSAGES" \
                > "$OUT/results/independent-q$qos-$slot.json" <<'PY'
import json, sys
start, sent = float(sys.argv[1]), int(sys.argv[3])
stamps = [float(line) for line in open(sys.argv[2]) if line.strip()]
seconds = (max(stamps) - start) if stamps else 0
print(json.dumps({"independent": True, "sent": sent, "received": len(stamps), "missing": sent - len(stamps),
                  "seconds": seconds, "receivedPerSecond": len(stamps) / seconds if seconds > 0 else 0}))
PY
            stop_broker
        done
    done
fi
if wants durable && [[ $A == bastion || $B == bastion ]]; then
    # Bastion against itself: 10 QoS 1 pairs with clean sessions (nothing touches the disk), then
    # with persistent sessions (each message stored, acknowledged after its fsync: strict).
    BENCH_BROKER=bastion bench durable-q1 a plain pairs --publishers 10 --qos 1 "${COMMON[@]}"
    BENCH_BROKER=bastion bench durable-q1 b plain pairs --publishers 10 --qos 1 --persistent-sessions "${COMMON[@]}"
fi
if wants sparkplug && [[ $A == bastion || $B == bastion ]]; then
    # Bastion against itself: 1,000 publishers → one subscriber of a wildcard, QoS 0, on plain
    # topics (bench/{run}/fanin/{i}) and as Sparkplug edge nodes (spBv1.0/{run}/NDATA/e{i}: an
    # NBIRTH each, then protobuf NDATA with a running seq, so the aware path and the inventory see
    # every message). Same topic depth, same payload size.
    BENCH_BROKER=bastion bench sparkplug-fanin a plain fanin --publishers 1000 "${COMMON[@]}"
    BENCH_BROKER=bastion bench sparkplug-fanin b plain fanin --publishers 1000 --sparkplug "${COMMON[@]}"
fi
if wants conn; then
    both conn-10k plain conn --connections "$CONNECTIONS" --connect-rate 1000 --duration 5 --keep-alive 60
fi

python3 "$ROOT/benchmarks/report.py" "$OUT/results" "$A" "$B" | tee "$OUT/table.md"
