"""Black-box fixtures: start the real `bastion` binary (or, with BROKER=mosquitto, Debian's
mosquitto with equivalent settings, to check that a test asserts the specification and not our
reading of it) on a free loopback port, and stop it after the test."""

import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BROKER = os.environ.get("BROKER", "bastion")
BASTION_BIN = os.environ.get("BASTION_BIN", str(ROOT / ".build" / "debug" / "bastion"))

# Bastion config keys under `limits:` and their mosquitto.conf equivalents.
MOSQUITTO_LIMITS = {
    "max_inflight": "max_inflight_messages",
    "max_queued_messages": "max_queued_messages",
    "max_queued_bytes": "max_queued_bytes",
    "max_keep_alive": "max_keepalive",
    "max_packet_size": "max_packet_size",
    "max_topic_alias": "max_topic_alias",
}


def free_port():
    """A free loopback port below the kernel's ephemeral range (32768 and up), which the
    outgoing connections of parallel test workers cannot take before the broker binds it."""
    import random
    while True:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", random.randrange(10000, 20000)))
            except OSError:
                continue
            return s.getsockname()[1]


def wait_for_port(host, port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {host}:{port} within {timeout}s")


class Broker:
    """A running broker process. `config` is Bastion's YAML config as a dict."""

    def __init__(self, workdir, config=None, args=None, anonymous=True, port=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.config = config or {}
        self.args = list(args or [])
        self.anonymous = anonymous
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.proc = None
        self.log_path = self.workdir / "broker.log"
        self.start()

    def command(self):
        if BROKER == "mosquitto":
            conf = self.workdir / "mosquitto.conf"
            lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {'true' if self.anonymous else 'false'}",
                     f"persistence_location {self.data_dir}/", "persistence true"]
            for key, value in (self.config.get("limits") or {}).items():
                if key in MOSQUITTO_LIMITS:
                    lines.append(f"{MOSQUITTO_LIMITS[key]} {value}")
            conf.write_text("\n".join(lines) + "\n")
            return ["mosquitto", "-c", str(conf)]
        # A config with its own listeners keeps them (the first must be on `self.port`).
        listen = [] if "listeners" in self.config else ["--listen", f"mqtt://{self.host}:{self.port}"]
        cmd = [BASTION_BIN, "serve", *listen, "--data-dir", str(self.data_dir), "--log-level", "debug"]
        if self.anonymous:
            cmd.append("--allow-anonymous")
        # The abuse limits stay at their defaults: protocol tests open many short connections from
        # loopback, which a default must never refuse.
        config = dict(self.config)
        path = self.workdir / "bastion.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--config", str(path)]
        return cmd + self.args

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_for_port(self.host, self.port, self.proc)

    def stop(self, timeout=10):
        """Graceful stop (SIGTERM); returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.stop()
        self.start()

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle, timeout=5.0):
        """Wait until the broker's log contains `needle` (e.g. that it saw a client go)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            time.sleep(0.02)
        raise AssertionError(f"broker log never showed {needle!r}")


@pytest.fixture
def broker_factory(tmp_path):
    """Start brokers with options: broker_factory(config={...}, args=[...])."""
    started = []

    def make(config=None, args=None, anonymous=True, name=None, port=None):
        b = Broker(tmp_path / (name or f"broker{len(started)}"), config=config, args=args, anonymous=anonymous, port=port)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


def pytest_configure(config):
    config.addinivalue_line("markers", "bastion_only: Bastion behaviour the specification leaves open")


def pytest_collection_modifyitems(config, items):
    if BROKER != "bastion":
        skip = pytest.mark.skip(reason="asserts Bastion-specific behaviour")
        for item in items:
            if "bastion_only" in item.keywords:
                item.add_marker(skip)


class EmbeddedDefault:
    """`bastion serve` with no arguments at all, as a newcomer runs it: loopback 1883 and 8883,
    authentication required, `data/` in its working directory. `password` is the generated admin
    password it printed."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.host, self.port, self.tls_port = "127.0.0.1", 1883, 8883
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "broker.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BASTION_BIN, "serve"], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_for_port(self.host, self.port, self.proc, timeout=30)
        wait_for_port(self.host, self.tls_port, self.proc, timeout=30)
        import re
        found = re.findall(r"password:\s+(\S+)", self.log_text())
        self.username = "admin"
        self.password = found[0] if found else None

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


EMBEDDED_LOCK = pathlib.Path("/tmp/bastion-blackbox-embedded-default.lock")


@pytest.fixture(scope="module")
def embedded_default(tmp_path_factory):
    """The embedded default broker (fixed ports: one at a time across test workers)."""
    import fcntl
    with open(EMBEDDED_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        b = EmbeddedDefault(tmp_path_factory.mktemp("embedded"))
        try:
            yield b
        finally:
            b.stop()
            fcntl.flock(lock, fcntl.LOCK_UN)
