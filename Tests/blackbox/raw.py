"""Raw-socket MQTT for malformed-packet and ordering tests."""

import socket
import struct
import time

TIMEOUT = 5.0


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(type_and_flags, body=b""):
    return bytes([type_and_flags]) + varint(len(body)) + body


def connect(client_id="raw", version=4, clean=True, keepalive=60, properties=b"", flags=None, username=None, password=None):
    name = b"MQIsdp" if version == 3 else b"MQTT"
    f = flags if flags is not None else (0x02 if clean else 0)
    if flags is None and username is not None:
        f |= 0x80
    if flags is None and password is not None:
        f |= 0x40
    body = string(name) + bytes([version, f]) + struct.pack("!H", keepalive)
    if version == 5:
        body += varint(len(properties)) + properties
    body += string(client_id)
    if username is not None:
        body += string(username)
    if password is not None:
        body += string(password)
    return packet(0x10, body)


class RawClient:
    def __init__(self, broker, timeout=TIMEOUT):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_packet(self, timeout=TIMEOUT):
        """Return (type_and_flags, body) or None when the broker closed the connection."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + length:
                            pkt = (self.buf[0], self.buf[i:i + length])
                            self.buf = self.buf[i + length:]
                            return pkt
                        break
            if time.monotonic() > deadline:
                raise TimeoutError("no packet from broker")
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def expect_closed(self, timeout=TIMEOUT):
        """Read until the broker closes; returns packets received before the close."""
        got = []
        while True:
            p = self.read_packet(timeout)
            if p is None:
                return got
            got.append(p)

    def close(self):
        self.sock.close()
