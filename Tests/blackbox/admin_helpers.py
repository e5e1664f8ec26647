"""Talking to the admin console of a running broker: HTTPS with the development CA, bearer
tokens, browser-style sessions (cookie + CSRF token), RFC 6238 codes."""

import base64
import hashlib
import hmac
import http.client
import json
import re
import ssl
import struct
import time
import urllib.parse

from conftest import free_port


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def cookies(self):
        """name -> (value, full Set-Cookie line)"""
        out = {}
        for line in self.headers.get("set-cookie-all", []):
            name, _, rest = line.partition("=")
            out[name] = (rest.split(";")[0], line)
        return out


class Console:
    """The admin listener of `broker` at `url` (https:// verified against DATA/tls/ca.pem)."""

    def __init__(self, broker, url):
        self.broker = broker
        parsed = urllib.parse.urlsplit(url)
        self.scheme, self.host, self.port = parsed.scheme, parsed.hostname, parsed.port
        self.data = broker.data_dir
        self.cookie = None

    @property
    def ca_file(self):
        return str(self.data / "tls" / "ca.pem")

    @property
    def token(self):
        return (self.data / "admin-token").read_text().strip()

    @property
    def initial_password(self):
        return (self.data / "admin-password").read_text().strip()

    def connection(self):
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection(self.host, self.port, context=context, timeout=10)
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def request(self, method, path, body=None, headers=None, token=None, content_type=None, host=None, cookie=True):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            content_type = content_type or "application/json"
        if isinstance(body, str):
            body = body.encode()
        if content_type:
            headers["Content-Type"] = content_type
        if cookie and self.cookie and "Cookie" not in headers:
            headers["Cookie"] = self.cookie
        conn = self.connection()
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if host is not None else f"{self.host}:{self.port}")
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            hdrs["set-cookie-all"] = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
            return Reply(r.status, hdrs, data)
        finally:
            conn.close()

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                pass
            if self.broker.proc.poll() is not None:
                raise RuntimeError("broker exited")
            time.sleep(0.1)
        raise AssertionError("admin console did not come up")

    def create_token(self, role, name=None):
        r = self.request("POST", "/api/v1/tokens", {"name": name or f"t-{role}", "role": role, "expires_days": 1}, token=self.token)
        assert r.status == 201, r.text
        return r.json()["token"]

    # Browser-like flow: cookie jar of one, CSRF from the page.

    def _take_cookie(self, reply):
        cookies = reply.cookies()
        if "bastion_session" in cookies:
            value = cookies["bastion_session"][0]
            self.cookie = f"bastion_session={value}" if value else None

    def get_page(self, path):
        r = self.request("GET", path)
        self._take_cookie(r)
        return r

    def post_form(self, path, fields):
        r = self.request("POST", path, urllib.parse.urlencode(fields), content_type="application/x-www-form-urlencoded")
        self._take_cookie(r)
        return r

    @staticmethod
    def csrf(page):
        m = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert m, page.text[:500]
        return m.group(1)

    def login(self, username, password):
        page = self.get_page("/login")
        return self.post_form("/login", {"_csrf": self.csrf(page), "username": username, "password": password})

    def enrol_totp(self):
        """After a first password login: read the key from the page, answer with a code. Returns the secret."""
        page = self.get_page("/login/enrol")
        assert page.status == 200, page.text
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
        r = self.post_form("/login/enrol", {"_csrf": self.csrf(page), "code": totp(secret)})
        assert r.status == 303 and r.header("location") == "/ui/overview", (r.status, r.text)
        return secret


def totp(secret_base32, at=None, step=30, digits=6):
    """RFC 6238 with SHA-1, as authenticator apps compute it."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** digits
    return str(code).zfill(digits)


def start_console(broker_factory, scheme="https", config=None, args=None, name=None):
    port = free_port()
    admin = {"listen": f"{scheme}://127.0.0.1:{port}"}
    admin.update((config or {}).pop("admin", {}) if config else {})
    cfg = dict(config or {})
    cfg["admin"] = admin
    broker = broker_factory(config=cfg, args=args, name=name)
    console = Console(broker, admin["listen"])
    console.wait_ready()
    return broker, console
