"""The `bastion` command line: help, refusal of unsafe or invalid configuration with exit code 2 and
a message naming what is wrong, the no-argument default listener, clean exit on SIGTERM."""

import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import BASTION_BIN, free_port, wait_for_port

pytestmark = pytest.mark.bastion_only  # the command line is Bastion's own


def run(args, tmp_path, timeout=20, env=None):
    e = dict(os.environ)
    e.update({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg"), "XDG_CONFIG_HOME": str(tmp_path / "xdgc")})
    e.update(env or {})
    p = subprocess.run([BASTION_BIN] + args, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=e)
    return p.returncode, p.stdout + p.stderr


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def serve_args(tmp_path, *extra):
    return ["serve", "--data-dir", str(tmp_path / "data"), *extra]


def test_help(tmp_path):
    code, out = run(["--help"], tmp_path)
    assert code == 0
    assert "serve" in out


def test_serve_help_lists_the_documented_flags(tmp_path):
    code, out = run(["serve", "--help"], tmp_path)
    assert code == 0
    for flag in ["--config", "--listen", "--data-dir", "--allow-anonymous", "--password-file", "--acl-file",
                 "--tls-cert", "--tls-key", "--log-level"]:
        assert flag in out, flag


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_anonymous_on_non_loopback_listener_is_refused(tmp_path, host):
    port = free_port()
    url = f"mqtt://{host}:{port}"
    code, out = run(serve_args(tmp_path, "--listen", url, "--allow-anonymous"), tmp_path)
    assert code == 2, out
    assert f"{host}:{port}" in out, f"message does not name the listener: {out!r}"


def test_unknown_top_level_config_key_names_the_key(tmp_path):
    cfg = write(tmp_path, "broker.yaml", "log_level: info\n# comment\nlistners:\n  - url: mqtt://127.0.0.1:1\n")
    code, out = run(serve_args(tmp_path, "--config", str(cfg)), tmp_path)
    assert code == 2, out
    assert "listners" in out and "broker.yaml" in out, out
    assert re.search(r"(?i)line\W*3\b|broker\.yaml:3\b", out), f"message does not give line 3: {out!r}"


def test_unknown_nested_config_key_names_the_key(tmp_path):
    port = free_port()
    cfg = write(tmp_path, "nested.yaml",
                f"listeners:\n  - url: mqtt://127.0.0.1:{port}\nlimits:\n  max_packet_sise: 1024\n")
    code, out = run(serve_args(tmp_path, "--config", str(cfg)), tmp_path)
    assert code == 2, out
    assert "max_packet_sise" in out and "nested.yaml" in out, out


def test_config_value_of_wrong_type_names_the_key(tmp_path):
    cfg = write(tmp_path, "typed.yaml", "limits:\n  max_packet_size: big\n")
    code, out = run(serve_args(tmp_path, "--config", str(cfg)), tmp_path)
    assert code == 2, out
    assert "max_packet_size" in out, out


def test_config_syntax_error_names_the_file(tmp_path):
    cfg = write(tmp_path, "broken.yaml", "limits:\n  max_packet_size: [1, 2\n")
    code, out = run(serve_args(tmp_path, "--config", str(cfg)), tmp_path)
    assert code == 2, out
    assert "broken.yaml" in out, out


def test_missing_config_file_is_exit_2(tmp_path):
    code, out = run(serve_args(tmp_path, "--config", str(tmp_path / "nope.yaml")), tmp_path)
    assert code == 2, out
    assert "nope.yaml" in out, out


@pytest.mark.parametrize("url", ["bogus://127.0.0.1:1883", "mqtt://127.0.0.1:99999", "127.0.0.1:1883"])
def test_invalid_listen_url_is_exit_2(tmp_path, url):
    code, out = run(serve_args(tmp_path, "--listen", url, "--allow-anonymous"), tmp_path)
    assert code == 2, out
    assert url in out, f"message does not name the URL: {out!r}"


def test_unknown_flag_is_exit_2(tmp_path):
    code, out = run(["serve", "--frobnicate"], tmp_path)
    assert code == 2, out
    assert "frobnicate" in out


def test_invalid_log_level_is_exit_2(tmp_path):
    port = free_port()
    code, out = run(serve_args(tmp_path, "--listen", f"mqtt://127.0.0.1:{port}", "--allow-anonymous",
                               "--log-level", "loud"), tmp_path)
    assert code == 2, out
    assert "loud" in out


def test_port_in_use_is_a_runtime_failure(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, out = run(serve_args(tmp_path, "--listen", f"mqtt://127.0.0.1:{port}", "--allow-anonymous"), tmp_path)
    assert code == 1, out
    assert str(port) in out, out


def test_sigterm_exits_0(broker):
    assert broker.stop() == 0


_held_locks = []


@pytest.fixture(autouse=True)
def _release_embedded_lock():
    yield
    while _held_locks:
        _held_locks.pop().close()


def _connack_rc(host, port):
    """Anonymous 3.1.1 CONNECT; returns the CONNACK return code (or None if closed first)."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02cl")
        data = b""
        while len(data) < 4:
            chunk = s.recv(4 - len(data))
            if not chunk:
                return None
            data += chunk
        assert data[0] == 0x20
        return data[3]


def _non_loopback_address():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    except OSError:
        return None


def test_serve_without_arguments_listens_on_loopback_1883_with_auth(tmp_path):
    import fcntl
    from conftest import EMBEDDED_LOCK
    lock = open(EMBEDDED_LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)   # released when the test ends (lock closed by GC)
    _held_locks.append(lock)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", 1883))
        except OSError:
            pytest.skip("127.0.0.1:1883 is in use")
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"),
               XDG_CONFIG_HOME=str(tmp_path / "xdgc"))
    log = open(tmp_path / "default.log", "wb")
    proc = subprocess.Popen([BASTION_BIN, "serve"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    try:
        wait_for_port("127.0.0.1", 1883, proc, timeout=30)
        rc = _connack_rc("127.0.0.1", 1883)
        assert rc in (None, 0x04, 0x05), f"anonymous client accepted by the default configuration (rc={rc})"
        other = _non_loopback_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, 1883), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        log.close()
    assert code == 0, (tmp_path / "default.log").read_text(errors="replace")
