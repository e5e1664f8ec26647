#!/usr/bin/env python3
"""Turns compare.sh's JSON results into a markdown table: both brokers' figures and their ratio.

usage: report.py RESULTS_DIR NAME_A NAME_B
Files are LABEL-a.json and LABEL-b.json as written by compare.sh; missing runs print as "—".
"""
import json
import os
import sys


def load(results, label, slot):
    try:
        with open(os.path.join(results, f"{label}-{slot}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def dig(run, *path):
    for key in path:
        if run is None:
            return None
        run = run.get(key) if isinstance(run, dict) else None
    return run


def fmt(value, digits=0):
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def bridge_rows(row, received):
    """Bridged throughput (compare.sh `bridge`): 20 publishers on the local broker, its bridge to a
    remote Bastion, one subscriber there; messages/s counted by that subscriber."""
    row("bridge: 20 → local → remote → 1, QoS 0", "messages/s at the remote", "bridge-q0", received)
    row("bridge: 20 → local → remote → 1, QoS 1", "messages/s at the remote", "bridge-q1", received)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    results, name_a, name_b = sys.argv[1:]
    rows = []

    def row(title, metric, label, extract, digits=0):
        a, b = extract(load(results, label, "a")), extract(load(results, label, "b"))
        if a is None and b is None:
            return
        rows.append((title, metric, fmt(a, digits), fmt(b, digits), ratio(a, b)))

    received = lambda run: dig(run, "messages", "receivedPerSecond")
    row("fan-out 1 → 20, QoS 0", "deliveries/s", "fanout-q0", received)
    row("fan-out 1 → 20, QoS 1", "deliveries/s", "fanout-q1", received)
    row("fan-in 20 → 1, QoS 0", "deliveries/s", "fanin-q0", received)
    row("fan-in 20 → 1, QoS 1", "deliveries/s", "fanin-q1", received)
    row("10 pairs, QoS 1", "deliveries/s", "pairs-q1", received)
    for label, title in (("fanout-q0-half", "fan-out 1 → 20, QoS 0"), ("fanin-q0-half", "fan-in 20 → 1, QoS 0")):
        run = load(results, label, "a") or load(results, label, "b")
        rate = dig(run, "setup", "targetRate")
        if rate is None:
            continue
        paced = f"{title} at {rate:,.0f} msg/s published (½ reference max)"
        row(paced, "latency p50 µs (lower is better)", label, lambda r: dig(r, "latencyMicros", "p50"))
        row(paced, "latency p99 µs (lower is better)", label, lambda r: dig(r, "latencyMicros", "p99"))
        row(paced, "latency p99.9 µs (lower is better)", label, lambda r: dig(r, "latencyMicros", "p999"))
    row("fan-in 20 → 1, QoS 0, TLS", "deliveries/s", "fanin-q0-tls", received)
    row("fan-in 20 → 1, QoS 0, ACL (201 rules)", "deliveries/s", "fanin-q0-acl", received)
    for label, title in (("fanin-q0-tls", "TLS cost vs plain fan-in QoS 0"), ("fanin-q0-acl", "ACL cost vs plain fan-in QoS 0")):
        costs = []
        for slot in ("a", "b"):
            plain, other = received(load(results, "fanin-q0", slot)), received(load(results, label, slot))
            costs.append(None if not plain or other is None else 100 * (1 - other / plain))
        if any(c is not None for c in costs):
            rows.append((title, "throughput lost, % (lower is better)", fmt(costs[0], 1), fmt(costs[1], 1), "—"))
    independent = lambda run: dig(run, "receivedPerSecond")
    row("mosquitto_pub -l → mosquitto_sub, QoS 0", "messages/s (independent clients)", "independent-q0", independent)
    row("mosquitto_pub -l → mosquitto_sub, QoS 1", "messages/s (independent clients)", "independent-q1", independent)
    bridge_rows(row, received)
    conn = load(results, "conn-10k", "a") or load(results, "conn-10k", "b")
    n = dig(conn, "setup", "connections")
    if n is not None:
        row(f"{n:,} idle connections", "RSS per connection KiB (lower is better)", "conn-10k",
            lambda r: dig(r, "resources", "brokerRSSPerConnectionKiB"), 2)
        row(f"{n:,} idle connections", "set-up time p99 ms (lower is better)", "conn-10k",
            lambda r: dig(r, "connections", "setupMillis", "p99"), 2)

    print(f"| scenario | metric | {name_a} | {name_b} | {name_a} / {name_b} |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    # Bastion against itself: slot a is the baseline, slot b the variant.
    def against_itself(label, scenario, baseline, variant, ratio_name):
        a, b = received(load(results, label, "a")), received(load(results, label, "b"))
        if a is None and b is None:
            return
        print()
        print(f"| Bastion, {scenario} | {baseline} | {variant} | {ratio_name} |")
        print("|---|---:|---:|---:|")
        print(f"| deliveries/s | {fmt(a)} | {fmt(b)} | {ratio(b, a)} |")

    against_itself("durable-q1", "10 pairs, QoS 1", "in memory (clean sessions)", "durable (persistent sessions, strict)",
                   "durable / in memory")
    against_itself("sparkplug-fanin", "fan-in 1,000 → 1, QoS 0", "plain topics", "Sparkplug NDATA (aware)", "aware / plain")

    # Details: what each run cost and whether anything went wrong.
    labels = sorted({f.rsplit("-", 1)[0] for f in os.listdir(results) if f.endswith(".json")})
    print()
    print("| run | broker | sent/s | received/s | missing | errors | latency p99 µs | broker CPU | generator CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in labels:
        for slot, name in (("a", name_a), ("b", name_b)):
            if label == "durable-q1":
                name = "bastion, in memory" if slot == "a" else "bastion, durable"
            if label == "sparkplug-fanin":
                name = "bastion, plain topics" if slot == "a" else "bastion, Sparkplug"
            run = load(results, label, slot)
            if run is None or run.get("independent"):
                continue
            cpu = lambda v: "—" if v is None else f"{100 * v:.0f} %"
            print(f"| {label} | {name} | {fmt(dig(run, 'messages', 'sentPerSecond'))} | {fmt(received(run))} | "
                  f"{fmt(dig(run, 'messages', 'missing'))} | {fmt(run.get('errorCount'))} | "
                  f"{fmt(dig(run, 'latencyMicros', 'p99'))} | {cpu(dig(run, 'resources', 'brokerCPU'))} | "
                  f"{cpu(dig(run, 'resources', 'generatorCPU'))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
