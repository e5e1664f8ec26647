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
# --only takes a comma-separated subset of: fanout,fanin,pairs,latency,tls,acl,independent,conn,durable,sparkplug,bridge
# (durable runs Bastion only: the same QoS 1 load with clean and with persistent sessions;
# sparkplug runs Bastion only: NDATA from 1,000 edge nodes next to the same fan-in on plain topics;
# bridge: each broker's own bridge forwards bench/# to a second broker, always Bastion).
# Results (JSON per run, broker logs, table.md) stay in --out (default: a temporary directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
A=bastion
B=mosquitto
DURATION=10
WARMUP=2
ONLY="fanout,fanin,pairs,latency,tls,acl,independent,conn,durable,sparkplug,bridge"
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
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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

# Bridged throughput: 20 publishers on the local broker (slot a: $A, slot b: $B), that broker's
# own bridge forwarding bench/# to site/bench/# on a remote broker, one subscriber there. The
# remote is always Bastion with the settings above (anonymous, loopback): the faster broker, so
# the remote is not the bottleneck of either bridge. Both bridges speak MQTT 5, clean session,
# one topic `bench/#` at the run's QoS, and keep at most 32 messages in flight (the remote's
# Receive Maximum; Mosquitto also by max_inflight_messages 32). Bastion's QoS 1 bridge queue is
# durable (each message stored before its PUBACK); Mosquitto's (persistence false) is memory only.
# `bastion bench pub` (local) and `bastion bench sub` (remote) are separate processes: the
# subscriber starts first and its window (warm-up + 1 s, then --duration) lies inside the
# publishers' run (--duration + 2 s), so it measures the steady bridged rate. Each run's JSON is
# the subscriber's report with the publishers' sent counts and CPU folded in.
bridge_scenario() {
    local slot name qos local_port local_pid local_log conf up sub_pid
    local sub_warmup pub_duration
    sub_warmup=$(awk "BEGIN { print $WARMUP + 1 }")
    pub_duration=$(awk "BEGIN { print $DURATION + 2 }")
    for slot in a b; do
        name="$A"; [[ $slot == b ]] && name="$B"
        for qos in 0 1; do
            start_broker bastion plain  # the remote: BROKER_PID, BROKER_PORT
            local_port=$((PORT_BASE++))
            local_log="$OUT/logs/bridge-q$qos-$slot-$name-local-$local_port.log"
            case "$name" in
                mosquitto)
                    conf="$WORK/mosquitto-bridge-q$qos.conf"
                    {
                        echo "per_listener_settings false"
                        echo "listener $local_port 127.0.0.1"
                        echo "allow_anonymous true"
                        echo "persistence false"
                        echo "max_connections -1"
                        echo "max_inflight_messages 32"
                        echo "max_queued_messages 1000"
                        echo "max_packet_size 262144"
                        echo "set_tcp_nodelay true"
                        echo "log_dest stderr"
                        echo "log_type error"
                        echo "log_type warning"
                        echo "connection bench-bridge"
                        echo "address 127.0.0.1:$BROKER_PORT"
                        echo "remote_clientid bench-bridge"
                        echo "bridge_protocol_version mqttv50"
                        echo "cleansession true"
                        echo "try_private false"      # the remote need not know Mosquitto's bridge flag
                        echo "notifications false"    # no extra $SYS traffic to the remote
                        echo "restart_timeout 1 5"
                        echo "topic bench/# out $qos \"\" site/"
                    } > "$conf"
                    mosquitto -c "$conf" > "$local_log" 2>&1 &
                    ;;
                bastion)
                    conf="$WORK/bastion-bridge-q$qos.yaml"
                    {
                        echo "listeners:"
                        echo "  - url: mqtt://127.0.0.1:$local_port"
                        echo "auth:"
                        echo "  allow_anonymous: true"
                        echo "limits:"
                        echo "  max_inflight: 32"
                        echo "  max_queued_messages: 1000"
                        echo "  max_packet_size: 262144"
                        echo "  max_connections: $((CONNECTIONS + 1000))"
                        echo "  max_connections_per_ip: $((CONNECTIONS + 1000))"
                        echo "  connect_rate_per_ip: 1000000"
                        echo "  connect_burst_per_ip: 1000000"
                        echo "  flap_connections: 0"
                        echo "  auth_failures_per_ip: 0"
                        echo "  auth_failures_per_user: 0"
                        echo "persistence:"
                        echo "  data_dir: $WORK/bastion-data-$local_port"
                        echo "log_level: warning"
                        echo "bridges:"
                        echo "  - name: bench"
                        echo "    remotes: [mqtt://127.0.0.1:$BROKER_PORT]"
                        echo "    protocol: 5"
                        echo "    client_id: bench-bridge"
                        echo "    topics:"
                        echo "      - {local: \"bench/#\", remote_prefix: \"site/\", qos: $qos}"
                    } > "$conf"
                    "$BIN" serve --config "$conf" > "$local_log" 2>&1 &
                    ;;
            esac
            local_pid=$!
            BRIDGE_LOCAL_PID=$local_pid
            trap 'kill "${BRIDGE_LOCAL_PID:-}" 2>/dev/null || true; stop_broker' EXIT
            up=0
            for _ in $(seq 1 100); do
                if (exec 3<>"/dev/tcp/127.0.0.1/$local_port") 2>/dev/null; then up=1; break; fi
                kill -0 "$local_pid" 2>/dev/null || break
                sleep 0.1
            done
            if [[ $up == 0 ]]; then
                # A Bastion without bridge support refuses the `bridges:` section (exit 2).
                if [[ $name == bastion ]] && grep -q "bridges" "$local_log"; then
                    echo "compare.sh: bridge-q$qos: skipping bastion: this binary refuses the \`bridges:\` section; log:" >&2
                else
                    echo "compare.sh: bridge-q$qos: skipping $name: the local broker did not start with its bridge; log:" >&2
                fi
                head -5 "$local_log" >&2
                kill "$local_pid" 2>/dev/null || true; wait "$local_pid" 2>/dev/null || true
                stop_broker
                continue
            fi
            # The link is up once a probe published locally arrives at the remote (back-off
            # may delay the first connection a few seconds).
            up=0
            for _ in $(seq 1 15); do
                mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t site/bench/probe -C 1 -W 2 > /dev/null 2>&1 &
                sub_pid=$!
                sleep 0.3
                mosquitto_pub -h 127.0.0.1 -p "$local_port" -q 1 -t bench/probe -m probe 2>/dev/null || true
                if wait "$sub_pid"; then up=1; break; fi
            done
            if [[ $up == 1 ]]; then
                echo "  bridge-q$qos: $name → bastion…" >&2
                "$BIN" bench sub --port "$BROKER_PORT" --subscribers 1 --qos "$qos" --topic 'site/bench/#' \
                    --warmup "$sub_warmup" --duration "$DURATION" --drain 1 --broker-pid "$local_pid" --json \
                    > "$WORK/bridge-sub.json" 2> "$OUT/logs/bench-bridge-q$qos-$slot-sub.err" &
                sub_pid=$!
                sleep 1  # subscribed before the first message
                "$BIN" bench pub --port "$local_port" --publishers 20 --qos "$qos" --topic 'bench/bridge/%i' --size 64 \
                    --warmup "$WARMUP" --duration "$pub_duration" --broker-pid "$BROKER_PID" --json \
                    > "$WORK/bridge-pub.json" 2> "$OUT/logs/bench-bridge-q$qos-$slot-pub.err" || true
                wait "$sub_pid" || true
                if ! python3 - "$WORK/bridge-sub.json" "$WORK/bridge-pub.json" > "$OUT/results/bridge-q$qos-$slot.json" <<'PY'
import json, sys
sub, pub = (json.load(open(path)) for path in sys.argv[1:3])
m, p = sub["messages"], pub["messages"]
m["sent"], m["sentInWindow"], m["sentPerSecond"] = p["sent"], p["sentInWindow"], p["sentPerSecond"]
m["acknowledged"], m["unacknowledged"] = p["acknowledged"], p["unacknowledged"]
r, pr = sub["resources"], pub["resources"]
r["remoteBrokerCPU"] = pr.get("brokerCPU")  # brokerCPU is the local broker (the bridge)
if r.get("generatorCPU") is not None and pr.get("generatorCPU") is not None:
    r["generatorCPU"] += pr["generatorCPU"]
sub["errors"] = {**pub.get("errors", {}), **sub.get("errors", {})}
sub["errorCount"] = sub.get("errorCount", 0) + pub.get("errorCount", 0)
sub["publishers"] = pub["setup"]
print(json.dumps(sub, indent=1))
PY
                then
                    echo "compare.sh: bridge-q$qos against $name: no report, see $OUT/logs/bench-bridge-q$qos-$slot-*.err" >&2
                    rm -f "$OUT/results/bridge-q$qos-$slot.json"
                fi
            else
                echo "compare.sh: bridge-q$qos: skipping $name: no probe crossed the bridge within 30 s; log:" >&2
                tail -5 "$local_log" >&2
            fi
            kill "$local_pid" 2>/dev/null || true
            wait "$local_pid" 2>/dev/null || true
            BRIDGE_LOCAL_PID=""
            trap stop_broker EXIT
            stop_broker
        done
    done
}

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
if wants bridge; then
    bridge_scenario
fi
if wants conn; then
    both conn-10k plain conn --connections "$CONNECTIONS" --connect-rate 1000 --duration 5 --keep-alive 60
fi

python3 "$ROOT/benchmarks/report.py" "$OUT/results" "$A" "$B" | tee "$OUT/table.md"
