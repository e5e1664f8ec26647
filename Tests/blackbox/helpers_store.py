"""Helpers for the durability tests: a pipelined raw MQTT connection (a fast publisher and a QoS 2
receiver that keeps its state across reconnections, as a real exactly-once client does), read-only
inspection of the broker's SQLite database, and tmpfs / read-only mounts.

Everything is bounded in time; nothing here binds anything but loopback."""

import contextlib
import errno
import hashlib
import os
import select
import socket
import sqlite3
import subprocess
import time
import uuid

import pytest

import wire
from wire import CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, Packet

DB_NAME = "bastion.sqlite3"
RC_QUOTA_EXCEEDED = 0x97


def unique(prefix="dur"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def payload(i):
    """Payload of message number i; `index(payload(i)) == i`."""
    return b"m%07d" % i


def index(data):
    return int(bytes(data[1:8]))


# ----- a pipelined raw connection --------------------------------------------------------------

class Conn:
    """A raw MQTT connection that reads whatever has arrived in one go and decodes it.

    `read(timeout)` returns the packets available (waiting up to `timeout` for the first one);
    an empty list means nothing arrived in time; `closed` turns true when the broker closed the
    connection (or died)."""

    def __init__(self, broker, version=5, timeout=5.0):
        self.version = version
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False
        self.connack = None

    def send(self, data):
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def _parse(self):
        out = []
        buf = self.buf
        pos = 0
        while True:
            frame = wire.split_frame(buf, pos)
            if frame is None:
                break
            first, body, pos = frame
            out.append(Packet(first, body, self.version))
        if pos:
            del buf[:pos]
        return out

    def read(self, timeout=5.0):
        got = self._parse()
        if got or self.closed:
            return got
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return []
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError, socket.timeout):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return self._parse()
            self.buf += chunk
            got = self._parse()
            if got:
                return got
        return []

    def expect(self, ptype, timeout=5.0, keep=None):
        """The next packet must be `ptype`; PUBLISH packets read first go to `keep` (a list) if given."""
        deadline = time.monotonic() + timeout
        pending = getattr(self, "_pending", [])
        while True:
            while pending:
                pkt = pending.pop(0)
                if pkt.type == PUBLISH and keep is not None and ptype != PUBLISH:
                    keep.append(pkt)
                    continue
                assert pkt.type == ptype, f"expected packet type {ptype}, got {pkt!r}"
                self._pending = pending
                return pkt
            left = deadline - time.monotonic()
            assert left > 0 and not self.closed, f"no packet of type {ptype} (closed={self.closed})"
            pending = self.read(left)

    def unread(self):
        """Packets decoded by `expect` but not consumed yet."""
        rest = getattr(self, "_pending", [])
        self._pending = []
        return rest

    def connect(self, client_id, clean=True, expiry=None, props=None, expect_rc=0, **kw):
        p = list(props or [])
        if expiry is not None and self.version == 5:
            p.append(("SessionExpiryInterval", expiry))
        self.send(wire.connect(client_id, version=self.version, clean=clean, props=p or None, **kw))
        self.connack = self.expect(CONNACK)
        if expect_rc is not None:
            assert self.connack.rc == expect_rc, f"CONNACK {self.connack!r}"
        return self.connack

    def subscribe(self, filters, pid=1, props=None):
        """filters: [(filter, options byte)]; returns the SUBACK reason codes."""
        self.send(wire.subscribe(pid, filters, props=props, version=self.version))
        ack = self.expect(SUBACK)
        assert ack.pid == pid
        return ack.codes

    def disconnect(self):
        self.send(wire.disconnect())
        self.close()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed = True


def connect(broker, client_id, version=5, clean=True, expiry=None, **kw):
    c = Conn(broker, version)
    c.connect(client_id, clean=clean, expiry=expiry, **kw)
    return c


# ----- a pipelined publisher ---------------------------------------------------------------------

class PublishResult:
    def __init__(self):
        self.acked = []      # indices the broker acknowledged with success (PUBACK / PUBREC < 0x80)
        self.refused = []    # (index, reason code) of failure acknowledgements
        self.sent = 0        # PUBLISH packets written
        self.completed = 0   # QoS 2 flows finished with PUBCOMP
        self.closed = False  # the connection ended before everything was acknowledged
        self.stalled = False  # no acknowledgement came for 10 s


def publish_pipelined(conn, topic, count, qos, window=32, deadline=None, payload_of=payload, retain=False,
                      result=None):
    """Publishes messages 0..count-1 keeping up to `window` QoS 1/2 flows open (5.0 Receive
    Maximum counts a QoS 2 flow until PUBCOMP). Stops sending when `deadline` (monotonic) passes,
    and returns when every flow sent is finished, the connection ends, or nothing came for 10 s. Returns a PublishResult (`result`, if given, is filled as it
    goes, so another thread can watch it)."""
    result = result if result is not None else PublishResult()
    inflight = {}  # pid -> index
    next_pid = 1
    i = 0
    while (i < count and (deadline is None or time.monotonic() < deadline)) or inflight:
        out = bytearray()
        while i < count and len(inflight) < window and (deadline is None or time.monotonic() < deadline):
            while next_pid in inflight:
                next_pid = next_pid % 65535 + 1
            pid = next_pid
            next_pid = next_pid % 65535 + 1
            out += wire.publish(topic, payload_of(i), qos=qos, pid=pid, retain=retain, version=conn.version)
            inflight[pid] = i
            i += 1
        if out:
            if not conn.send(bytes(out)):
                result.closed = True
                break
        result.sent = i
        packets = conn.read(10.0)
        if not packets:
            # Closed, or 10 s without any acknowledgement: give up (every wait is bounded).
            result.closed = conn.closed
            result.stalled = not conn.closed
            break
        reply = bytearray()
        for pkt in packets:
            if pkt.type == PUBACK and pkt.pid in inflight:
                n = inflight.pop(pkt.pid)
                (result.acked.append(n) if pkt.rc < 0x80 else result.refused.append((n, pkt.rc)))
            elif pkt.type == PUBREC and pkt.pid in inflight:
                if pkt.rc < 0x80:
                    result.acked.append(inflight[pkt.pid])
                    reply += wire.ack(PUBREL, pkt.pid)
                else:
                    result.refused.append((inflight.pop(pkt.pid), pkt.rc))
            elif pkt.type == PUBCOMP and pkt.pid in inflight:
                inflight.pop(pkt.pid)
                result.completed += 1
        if reply:
            conn.send(bytes(reply))
        if conn.closed:
            result.closed = True
            break
    return result


# ----- a receiver with exactly-once state ------------------------------------------------------

class Receiver:
    """The application side of a subscriber. QoS 2 follows method A of the specification
    (figure 4.3): a message is delivered when its PUBLISH first arrives, its packet id is kept
    until PUBREL, and a PUBLISH carrying a kept id is a duplicate (acknowledged, not delivered).
    That state outlives connections, as a persistent client's must, so a broker that redelivers a
    completed QoS 2 message shows up as a duplicate in `delivered`."""

    def __init__(self, ack=True):
        self.ack = ack
        self.awaiting_release = set()
        self.delivered = []     # PUBLISH packets delivered to the application, in arrival order
        self.publishes = []     # every PUBLISH packet seen (duplicates included)
        self.pubrels = []       # packet ids of PUBREL received
        self.suppressed = []    # QoS 2 PUBLISH for a packet id still awaiting PUBREL (not delivered)
        self.others = []        # any other packet

    def handle(self, conn, packets):
        reply = bytearray()
        for pkt in packets:
            if pkt.type == PUBLISH:
                self.publishes.append(pkt)
                if pkt.qos == 2:
                    if pkt.pid in self.awaiting_release:
                        # Spec 4.3.3: acknowledged again, not delivered again.
                        self.suppressed.append(pkt)
                    else:
                        self.awaiting_release.add(pkt.pid)
                        self.delivered.append(pkt)
                    if self.ack:
                        reply += wire.ack(PUBREC, pkt.pid)
                else:
                    self.delivered.append(pkt)
                    if pkt.qos == 1 and self.ack:
                        reply += wire.ack(PUBACK, pkt.pid)
            elif pkt.type == PUBREL:
                self.pubrels.append(pkt.pid)
                self.awaiting_release.discard(pkt.pid)
                if self.ack:
                    reply += wire.ack(PUBCOMP, pkt.pid)
            else:
                self.others.append(pkt)
        if reply:
            conn.send(bytes(reply))

    def pump(self, conn, until=None, timeout=10.0, idle=None):
        """Reads and answers until `until()` holds, the connection ends, `timeout` passes, or
        (with `idle`) nothing arrived for `idle` seconds. Returns whether `until()` held."""
        deadline = time.monotonic() + timeout
        self.handle(conn, conn.unread())
        while not (until and until()):
            left = deadline - time.monotonic()
            if left <= 0 or conn.closed:
                break
            packets = conn.read(min(left, idle) if idle else left)
            if not packets and idle:
                break
            self.handle(conn, packets)
        return bool(until and until())

    def indices(self):
        return [index(p.payload) for p in self.delivered]


# ----- the database, read-only -------------------------------------------------------------------

def db_file(broker):
    return broker.data_dir / DB_NAME


def query(broker, sql, args=()):
    """Runs a read-only query on the broker's database (safe while it runs: WAL readers do not
    block the writer)."""
    con = sqlite3.connect(f"file:{db_file(broker)}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def scalar(broker, sql, args=()):
    return query(broker, sql, args)[0][0]


# Deliveries a session is owed: rows in `deliveries` and in `inline_deliveries` (a message owed to
# one session only, stored with its body). Parameter: the client id.
OWED_SQL = ("SELECT (SELECT count(*) FROM deliveries WHERE client_id = ?1)"
            " + (SELECT count(*) FROM inline_deliveries WHERE client_id = ?1)")
OWED_PAYLOADS_SQL = ("SELECT m.payload FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.client_id = ?1"
                     " UNION ALL SELECT payload FROM inline_deliveries WHERE client_id = ?1")


def wait_for_db(broker, sql, args=(), predicate=bool, timeout=5.0, what="database state"):
    """Polls `sql` until predicate(first column of first row) holds."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = scalar(broker, sql, args)
        if predicate(value):
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} never reached (last value {value!r})")


def integrity(path):
    """PRAGMA integrity_check of a database that no broker has open."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
    finally:
        con.close()


def fingerprint(directory):
    """{file name: (size, mtime_ns, sha256)} of the database and its -wal/-shm files."""
    out = {}
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        path = directory / name
        if path.exists():
            st = os.stat(path)
            out[name] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def settled_fingerprint(directory, quiet=0.3, timeout=5.0):
    """A fingerprint that stayed the same for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last = fingerprint(directory)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = fingerprint(directory)
        if now == last:
            return now
        last = now
    raise AssertionError(f"database files kept changing while idle: {last}")


# ----- mounts ---------------------------------------------------------------------------------

def _run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


def _umount(path):
    for _ in range(20):
        if _run("umount", str(path)).returncode == 0:
            return
        time.sleep(0.1)
    _run("umount", "-l", str(path))


@contextlib.contextmanager
def tmpfs(path, size):
    """Mounts a tmpfs of `size` (e.g. "4m") at `path`; skips the test if mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    r = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only_bind(path):
    """Makes `path` a read-only bind mount of itself (root ignores permission bits, not this)."""
    r = _run("mount", "--bind", str(path), str(path))
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        r = _run("mount", "-o", "remount,bind,ro", str(path))
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
        yield path
    finally:
        _umount(path)


def fill(directory, name="filler"):
    """Fills the file system holding `directory` until ENOSPC; returns the filler's path."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
