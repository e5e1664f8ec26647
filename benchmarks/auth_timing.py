#!/usr/bin/env python3
"""Login timing: how long a refused CONNECT takes for a known user with a wrong password, an
unknown user, and a user name without a password, and how long a successful login takes (first
and repeated). Starts its own broker (the built binary) with a password file made by
`bastion passwd` (default KDF parameters), alternates the cases over many tries and prints
medians, p90 and the known / unknown ratio. Timing differences are what a user-enumeration attack would measure.

    benchmarks/auth_timing.py [--tries 200] [--binary .build/release/bastion]
"""

import argparse
import os
import pathlib
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect(client_id, username=None, password=None):
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = string("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + string(client_id)
    if username is not None:
        body += string(username)
    if password is not None:
        body += string(password)
    return bytes([0x10, len(body)]) + body if len(body) < 128 else None


def timed_connack(port, **kw):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        packet = connect(f"t{time.monotonic_ns()}", **kw)
        started = time.perf_counter()
        s.sendall(packet)
        data = s.recv(4)
        elapsed = time.perf_counter() - started
        if len(data) == 4 and data[3] == 0:
            s.sendall(b"\xe0\x00")
        return elapsed, data[3] if len(data) == 4 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=200)
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "bastion"))
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bastion-auth-timing-"))
    passwd = work / "passwd"
    # bastion passwd writes the default hash (what a deployment made with it runs).
    subprocess.run([args.binary, "passwd", "-c", "-b", str(passwd), "alice", "alice-secret"], check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = subprocess.Popen([args.binary, "serve", "--listen", f"mqtt://127.0.0.1:{port}", "--password-file",
                               str(passwd), "--data-dir", str(work / "data")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cases = {
            "known user, wrong password": dict(username="alice", password="wrong"),
            "unknown user": dict(username="nobody", password="wrong"),
            "user name, no password": dict(username="alice"),
        }
        samples = {name: [] for name in cases}
        for i in range(args.tries):
            for name, kw in cases.items():
                samples[name].append(timed_connack(port, **kw)[0])
        ok_first = timed_connack(port, username="alice", password="alice-secret")[0]
        ok_again = statistics.median(timed_connack(port, username="alice", password="alice-secret")[0] for _ in range(50))
        print(f"{'case':30} {'median ms':>10} {'p90 ms':>8}")
        for name, values in samples.items():
            values.sort()
            print(f"{name:30} {statistics.median(values) * 1000:10.1f} {values[int(len(values) * 0.9)] * 1000:8.1f}")
        known = statistics.median(samples["known user, wrong password"])
        unknown = statistics.median(samples["unknown user"])
        print(f"known / unknown median ratio: {known / unknown:.3f}")
        print(f"correct password: first login {ok_first * 1000:.1f} ms, repeated (cached) {ok_again * 1000:.2f} ms")
    finally:
        broker.terminate()
        broker.wait()


if __name__ == "__main__":
    sys.exit(main())
