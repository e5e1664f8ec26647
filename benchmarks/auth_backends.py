#!/usr/bin/env python3
"""Connections per second authenticated through each identity backend, with a warm decision cache
(the same credentials again and again, `cache_ttl: 300`) and a cold one (`cache_ttl: 0`: every
CONNECT asks the backend). Starts its own broker (the built binary) per case and what the backend
needs: a throw-away PostgreSQL (scripts/test-servers/postgres.sh), slapd (slapd.sh) and a Python
webhook in its own process. Clients are worker processes doing CONNECT / CONNACK / DISCONNECT in a
loop on loopback, so client, broker and backend share the machine's cores.

    benchmarks/auth_backends.py [--binary .build/release/bastion] [--duration 5] [--workers 4]
                                [--backends file,jwt,jwks,postgres,ldap,http]

Needs PyJWT and cryptography (pip), PostgreSQL and slapd (Debian), as ./scripts/test installs.
"""

import argparse
import base64
import http.server
import json
import multiprocessing
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SERVERS = ROOT / "scripts" / "test-servers"
SECRET = "benchmark-shared-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def string(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("!H", len(b)) + b


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id, username, password):
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = string("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + string(client_id)
    if username is not None:
        body += string(username)
    if password is not None:
        body += string(password)
    return b"\x10" + varint(len(body)) + body


def worker(args):
    port, username, password, duration, index = args
    deadline = time.monotonic() + duration
    ok = failed = 0
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(connect_packet(f"bench-{index}-{n % 2}", username, password))
                data = b""
                while len(data) < 4:
                    chunk = s.recv(4 - len(data))
                    if not chunk:
                        break
                    data += chunk
                if len(data) == 4 and data[3] == 0:
                    ok += 1
                    s.sendall(b"\xe0\x00")
                else:
                    failed += 1
        except OSError:
            failed += 1
    return ok, failed


def measure(port, username, password, duration, workers):
    with multiprocessing.Pool(workers) as pool:
        started = time.monotonic()
        results = pool.map(worker, [(port, username, password, duration, i) for i in range(workers)])
        elapsed = time.monotonic() - started
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    return ok / elapsed, failed


def wait_for_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("broker exited before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("broker did not listen")


def run_broker(binary, work, auth, name):
    port = free_port()
    config = work / f"{name}.yaml"
    config.write_text(json.dumps({"auth": auth}))
    log = open(work / f"{name}.log", "wb")
    proc = subprocess.Popen([binary, "serve", "--config", str(config), "--listen", f"mqtt://127.0.0.1:{port}",
                             "--data-dir", str(work / f"data-{name}"), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_for_port(port, proc)
    return proc, port


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def hook_server(port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            data = json.dumps({"result": "allow" if body.get("password") == "hook-pass" else "deny"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "bastion"))
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--backends", default="file,jwt,jwks,postgres,ldap,http")
    args = ap.parse_args()
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    work = pathlib.Path(tempfile.mkdtemp(prefix="bastion-auth-bench-"))
    cleanup = []
    cases = []
    wanted = args.backends.split(",")
    exp = int(time.time()) + 3600
    try:
        if "file" in wanted:
            passwd = work / "passwd"
            subprocess.run([args.binary, "passwd", "-c", "-b", str(passwd), "bench", "bench-pass"], check=True)
            cases.append(("file ($7$, 50,000 iterations)", {"password_file": str(passwd), "backends": [{"type": "file"}]},
                          "bench", "bench-pass"))
        if "jwt" in wanted:
            (work / "jwt.secret").write_text(SECRET)
            cases.append(("jwt (HS256)", {"backends": [{"type": "jwt", "secret_file": str(work / "jwt.secret")}]},
                          "bench", jwt.encode({"sub": "bench", "exp": exp}, SECRET, algorithm="HS256")))
        if "jwks" in wanted:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwk["kid"] = "k1"
            (work / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
            cases.append(("jwks (RS256, 2048-bit)", {"backends": [{"type": "jwks", "jwks_file": str(work / "jwks.json"), "algorithms": ["RS256"]}]},
                          "bench", jwt.encode({"sub": "bench", "exp": exp}, key, algorithm="RS256", headers={"kid": "k1"})))
        if "postgres" in wanted:
            pg_port = free_port()
            out = subprocess.run([str(SERVERS / "postgres.sh"), "start", str(pg_port)], capture_output=True, text=True, check=True)
            pg_dir = out.stdout.strip().splitlines()[-1]
            cleanup.append(lambda: subprocess.run([str(SERVERS / "postgres.sh"), "stop", pg_dir], capture_output=True))
            hashed = work / "pg-passwd"
            subprocess.run(["mosquitto_passwd", "-c", "-b", str(hashed), "bench", "bench-pass"], check=True)
            value = hashed.read_text().strip().split(":", 1)[1]
            subprocess.run([str(SERVERS / "postgres.sh"), "sql", pg_dir, f"INSERT INTO mqtt_users VALUES ('bench', '{value}')"], check=True)
            (work / "pg.password").write_text("bastion-pass")
            cases.append(("postgres ($7$ by mosquitto_passwd, 101 iterations)", {"backends": [{
                "type": "postgres", "url": f"postgres://bastion@127.0.0.1:{pg_port}/iot", "password_file": str(work / "pg.password"),
                "password_query": "SELECT password_hash FROM mqtt_users WHERE username = $1",
                "acl_query": "SELECT access, topic FROM mqtt_acl WHERE username = $1"}]}, "bench", "bench-pass"))
        if "ldap" in wanted:
            ldap_port = free_port()
            ldap_dir = work / "slapd"
            subprocess.run([str(SERVERS / "slapd.sh"), "start", str(ldap_dir), str(ldap_port)], capture_output=True, check=True)
            cleanup.append(lambda: subprocess.run([str(SERVERS / "slapd.sh"), "stop", str(ldap_dir)], capture_output=True))
            cases.append(("ldap (slapd, bind + group search)", {"roles": {"ops": []}, "backends": [{
                "type": "ldap", "url": f"ldap://127.0.0.1:{ldap_port}", "bind_dn": "uid=%u,ou=people,dc=bastion,dc=test",
                "group_base": "ou=groups,dc=bastion,dc=test", "role_map": {"operators": "ops"}}]}, "alice", "alice-pass"))
        if "http" in wanted:
            hook_port = free_port()
            hook = multiprocessing.Process(target=hook_server, args=(hook_port,), daemon=True)
            hook.start()
            cleanup.append(hook.terminate)
            cases.append(("http (Python webhook)", {"backends": [{"type": "http", "url": f"http://127.0.0.1:{hook_port}/auth"}]},
                          "bench", "hook-pass"))

        rows = []
        for name, auth, username, password in cases:
            figures = []
            for cache in ("warm", "cold"):
                case_auth = dict(auth, cache_ttl=300 if cache == "warm" else 0)
                proc, port = run_broker(args.binary, work, case_auth, f"{name.split()[0]}-{cache}")
                try:
                    measure(port, username, password, 1, args.workers)  # warm-up (and fills the cache)
                    rate, failed = measure(port, username, password, args.duration, args.workers)
                finally:
                    stop(proc)
                figures.append((rate, failed))
            rows.append((name, figures))
            print(f"{name}: warm {figures[0][0]:.0f}/s ({figures[0][1]} failed), cold {figures[1][0]:.0f}/s ({figures[1][1]} failed)",
                  file=sys.stderr)
        print(f"\n| backend | warm cache, connections/s | cold cache, connections/s |\n|---|---:|---:|")
        for name, ((warm, wf), (cold, cf)) in rows:
            note = f" ({wf}/{cf} failed)" if wf or cf else ""
            print(f"| {name} | {warm:,.0f} | {cold:,.0f}{note} |")
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception:
                pass


if __name__ == "__main__":
    main()
