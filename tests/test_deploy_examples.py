"""The deployment examples, used as they are, give a safe instance.

supervisord.conf.example goes through supervisord's own parser; nginx.conf.example
through `nginx -t`, then runs for real (on free ports, with a throwaway certificate
and an echo server standing in for Whale and Hail), so what the tests check is what
nginx does: TLS only, the Hail vhost passes /count and /count.gif alone, Whale's
internal routes answer internal addresses alone, people log in and the read key is
added on the way, and no X-Forwarded-* header of a client reaches HailWhale.
"""

from __future__ import annotations

import base64
import getpass
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hailwhale.processes import free_port
from tests.servers import lacking

ROOT = Path(__file__).resolve().parent.parent
NGINX_EXAMPLE = (ROOT / "nginx.conf.example").read_text()
SUPERVISOR_EXAMPLE = (ROOT / "supervisord.conf.example").read_text()
READ_KEY = "r-test-0123456789"
PLACEHOLDER = "REPLACE-WITH-HAILWHALE_READ_KEY"
# A throwaway self-signed certificate for whale.example.com and hail.example.com,
# so that the test needs no openssl binary.
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyU8uY9PxJli2MwAO
31g+4a1YjrA4Q8A4RVVcVtkePuyhRANCAAQFbf45MiPufVsHr/Ztn9GzYwDqxEKZ
06xv1Y6vFPD66us7Wj2fObHeOdJucabEM5ChCwN0SfL0630H22NyI4cP
-----END PRIVATE KEY-----
"""
TEST_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBwTCCAWegAwIBAgIUPo19YDDtKsy4wnbmQcL4HZas/dkwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRd2hhbGUuZXhhbXBsZS5jb20wIBcNMjYxMTI5MjI1ODI5WhgP
MjEyNjExMDUyMjU4MjlaMBwxGjAYBgNVBAMMEXdoYWxlLmV4YW1wbGUuY29tMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBW3+OTIj7n1bB6/2bZ/Rs2MA6sRCmdOs
b9WOrxTw+urrO1o9nzmx3jnSbnGmxDOQoQsDdEny9Ot9B9tjciOHD6OBhDCBgTAd
BgNVHQ4EFgQUbptHsIX08GCkoucg2H8PEJtsLwwwHwYDVR0jBBgwFoAUbptHsIX0
8GCkoucg2H8PEJtsLwwwDwYDVR0TAQH/BAUwAwEB/zAuBgNVHREEJzAlghF3aGFs
ZS5leGFtcGxlLmNvbYIQaGFpbC5leGFtcGxlLmNvbTAKBggqhkjOPQQDAgNIADBF
AiEAg99/1UNi1f7MQvsmYW/1o9LRunu9FfSEvVk6PUmgCq4CIHPKX8unOjmn0V1W
4nwpMZlQuavNkywWloezOvpHBHN5
-----END CERTIFICATE-----
"""
LOGIN = ("ops", "s3cret-password")


# -- supervisord -------------------------------------------------------------------


def supervisor_programs(tmp_path: Path, text: str):
    from supervisor.options import ServerOptions

    programs = tmp_path / "hailwhale.conf"
    # The example runs as user `hailwhale`, which this machine need not have.
    programs.write_text(text.replace("user=hailwhale", f"user={getpass.getuser()}"))
    main = tmp_path / "supervisord.conf"
    main.write_text(f"[supervisord]\nlogfile={tmp_path}/s.log\npidfile={tmp_path}/s.pid\n"
                    f"[include]\nfiles={programs}\n")
    options = ServerOptions()
    options.configfile = str(main)
    options.process_config(do_usage=False)
    [group] = options.process_group_configs
    return {p.name: p for p in group.process_configs}


def test_supervisord_example_runs_whale_hail_and_a_flusher_with_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("HAILWHALE_WRITE_KEY", "w-from-the-environment")
    monkeypatch.setenv("HAILWHALE_READ_KEY", "r-from-the-environment")
    programs = supervisor_programs(tmp_path, SUPERVISOR_EXAMPLE)
    commands = {name: p.command for name, p in programs.items()}
    assert set(commands) == {"whale", "hail", "flusher_00"}
    assert "hailwhale serve --host 127.0.0.1" in commands["whale"]
    assert "hailwhale hail --host 127.0.0.1" in commands["hail"]
    assert commands["flusher_00"].endswith("hailwhale flush")
    assert all(p.autorestart for p in programs.values())
    whale, hail = programs["whale"].environment, programs["hail"].environment
    assert whale["HAILWHALE_WRITE_KEY"] == hail["HAILWHALE_WRITE_KEY"] == "w-from-the-environment"
    assert whale["HAILWHALE_READ_KEY"] == "r-from-the-environment"
    assert whale["HAILWHALE_FORWARDED_ALLOW_IPS"] == hail["HAILWHALE_FORWARDED_ALLOW_IPS"]
    assert whale["HAILWHALE_FORWARDED_ALLOW_IPS"] == "127.0.0.1"
    # The first lines say what to create before using it.
    head = SUPERVISOR_EXAMPLE.split("[group:")[0]
    for needed in ("useradd", "python3 -m venv", "appendonly", "6379", "6380",
                   "HAILWHALE_WRITE_KEY", "HAILWHALE_READ_KEY", "nginx.conf.example"):
        assert needed in head, needed


def test_supervisord_example_refuses_to_start_without_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("HAILWHALE_WRITE_KEY", raising=False)
    monkeypatch.delenv("HAILWHALE_READ_KEY", raising=False)
    with pytest.raises(ValueError, match="HAILWHALE_WRITE_KEY|HAILWHALE_READ_KEY"):
        supervisor_programs(tmp_path, SUPERVISOR_EXAMPLE)


# -- nginx -------------------------------------------------------------------------


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not nginx:
        lacking("nginx is not installed (apt-get install nginx-light)")
    return nginx


def main_conf(tmp_path: Path, nginx: str, include: Path, extra: str = "") -> Path:
    """An nginx.conf around `include` that keeps everything under `tmp_path`."""
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    kinds = [kind.replace("-", "_") for kind in re.findall(r"--http-([a-z-]+)-temp-path", built)]
    temp = "".join(f" {kind}_temp_path {tmp_path}/{kind};\n" for kind in kinds)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"{extra}error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\n"
        "events {}\n"
        f"http {{\n access_log off;\n{temp} include {include};\n}}\n"
    )
    return conf


def test_nginx_example_is_valid(tmp_path):
    nginx = nginx_binary()
    # `nginx -t` loads the certificates: the example's placeholders become real files.
    cert, key = tmp_path / "test.crt", tmp_path / "test.key"
    cert.write_text(TEST_CERTIFICATE)
    key.write_text(TEST_KEY)
    example = tmp_path / "hailwhale.conf"
    example.write_text(with_certificate(NGINX_EXAMPLE, cert, key))
    conf = main_conf(tmp_path, nginx, example)
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def with_certificate(text: str, cert: Path, key: Path) -> str:
    text = re.sub(r"ssl_certificate \S+;", f"ssl_certificate {cert};", text)
    return re.sub(r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};", text)


def test_nginx_example_placeholders_and_tls():
    # Certificates are placeholders, the read key one Whale refuses; only 443 serves.
    assert re.findall(r"ssl_certificate (\S+);", NGINX_EXAMPLE) == [
        "/etc/ssl/hailwhale/whale.example.com.fullchain.pem",
        "/etc/ssl/hailwhale/hail.example.com.fullchain.pem"]
    assert NGINX_EXAMPLE.count(f'X-HailWhale-Key "{PLACEHOLDER}"') == 1
    for block in re.split(r"\nserver \{", NGINX_EXAMPLE)[1:]:
        if "listen 80;" in block:
            assert "return 301 https://" in block and "proxy_pass" not in block
        else:
            assert "listen 443 ssl;" in block and "ssl_certificate " in block
            for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout",
                            "proxy_read_timeout", "client_max_body_size"):
                assert timeout in block


class Echo(BaseHTTPRequestHandler):
    """Whale and Hail stand-ins: answer what was asked, with which headers."""

    disable_nagle_algorithm = True  # headers and body go out in two writes

    def answer(self) -> None:
        body = json.dumps({"server": self.server.name, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_OPTIONS = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(tmp_path):
    """nginx with the example (free ports, test certificate and key), in front of echoes."""
    nginx = nginx_binary()
    backends = {}
    for name in ("whale", "hail"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        server.name = name
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        backends[name] = server
    http_port, https_port = free_port(), free_port()
    cert, key = tmp_path / "test.crt", tmp_path / "test.key"
    cert.write_text(TEST_CERTIFICATE)
    key.write_text(TEST_KEY)
    password = tmp_path / "htpasswd"
    password.write_text(f"{LOGIN[0]}:{{PLAIN}}{LOGIN[1]}\n")
    text = with_certificate(NGINX_EXAMPLE, cert, key)
    text = text.replace("/etc/nginx/hailwhale.htpasswd", str(password))
    text = text.replace(PLACEHOLDER, READ_KEY)
    text = text.replace("127.0.0.1:8085", f"127.0.0.1:{backends['whale'].server_port}")
    text = text.replace("127.0.0.1:8086", f"127.0.0.1:{backends['hail'].server_port}")
    text = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", text)  # IPv6 may be off here
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    example = tmp_path / "hailwhale.conf"
    example.write_text(text)
    # As root, workers would run as nobody, who cannot read the password file here.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = main_conf(tmp_path, nginx, example, user + "daemon off;\n")
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):  # up to 5 s for nginx to listen
            try:
                http.client.HTTPConnection("127.0.0.1", http_port, timeout=1).connect()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(process.stdout.read().decode())
                time.sleep(0.05)
        yield http_port, https_port
    finally:
        process.terminate()
        process.wait(10)
        for server in backends.values():
            server.shutdown()
            server.server_close()


# The test certificate is self-signed: no verification (and no CA bundle to load).
TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def fetch(port: int, host: str, path: str, *, tls: bool = True, method: str = "GET",
          headers: dict | None = None, source: str = "127.0.0.1"):
    """Status, headers and body of one request to nginx, from the address `source`."""
    if tls:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                                 context=TLS, source_address=(source, 0))
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                                source_address=(source, 0))
    try:
        connection.request(method, path, headers={"Host": host, **(headers or {})})
        answer = connection.getresponse()
        body = answer.read()
        return answer.status, answer.headers, body
    finally:
        connection.close()


def passed_on(body: bytes) -> dict:
    return json.loads(body)


OUTSIDE = "127.0.0.2"  # a loopback address that is not on the example's allow lists
WHALE, HAIL = "whale.example.com", "hail.example.com"
LOGGED_IN = {"Authorization": "Basic " + base64.b64encode(":".join(LOGIN).encode()).decode()}
FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example",
          "X-Forwarded-Proto": "http", "Forwarded": "for=203.0.113.9;host=evil.example"}


def test_nginx_example_plain_http_only_redirects(proxy):
    http_port, _ = proxy
    for host in (WHALE, HAIL):
        status, headers, _ = fetch(http_port, host, "/count?metrics=x", tls=False,
                                   source=OUTSIDE)
        assert status == 301
        assert headers["Location"] == f"https://{host}/count?metrics=x"


def test_nginx_example_hail_passes_count_and_count_gif_alone(proxy):
    _, port = proxy
    for path in ("/count?metrics=clicks", "/count.gif?metrics=clicks"):
        status, _, body = fetch(port, HAIL, path, source=OUTSIDE, headers=FORGED)
        assert status == 200, path
        seen = passed_on(body)
        assert (seen["server"], seen["path"]) == ("hail", path)
        assert seen["headers"]["x-forwarded-for"] == OUTSIDE
        assert seen["headers"]["x-forwarded-host"] == HAIL
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert "forwarded" not in seen["headers"]
        assert "x-hailwhale-key" not in seen["headers"]  # apps send the write key
    status, headers, _ = fetch(port, HAIL, "/count", method="OPTIONS", source=OUTSIDE,
                               headers={"Origin": "https://www.example.com"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    status, headers, _ = fetch(port, HAIL, "/count", source=OUTSIDE,
                               headers={"Origin": "https://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    for path in ("/health", "/openapi.json", "/flush_hail", "/count_now", "/plotpoints",
                 "/countx", "/count.gif/x", "/"):
        assert fetch(port, HAIL, path, source=OUTSIDE)[0] == 404, path


def test_nginx_example_whale_needs_a_login_and_adds_the_read_key(proxy):
    _, port = proxy
    for path in ("/", "/plotpoints?metrics=hits", "/graph.js", "/meta", "/openapi.json"):
        status, headers, _ = fetch(port, WHALE, path, source=OUTSIDE)
        assert status == 401 and "Basic" in headers["WWW-Authenticate"], path
    status, headers, body = fetch(port, WHALE, "/plotpoints?metrics=hits", source=OUTSIDE,
                                  headers={**LOGGED_IN, **FORGED, "Origin": "https://x.example",
                                           "X-HailWhale-Key": "the client's own"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers  # no cross-origin reads with the key
    assert "max-age" in headers["Strict-Transport-Security"]
    seen = passed_on(body)
    assert (seen["server"], seen["path"]) == ("whale", "/plotpoints?metrics=hits")
    assert seen["headers"]["x-hailwhale-key"] == READ_KEY
    assert "authorization" not in seen["headers"]  # the password stays in nginx
    assert seen["headers"]["x-forwarded-for"] == OUTSIDE
    assert seen["headers"]["x-forwarded-host"] == WHALE
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert "forwarded" not in seen["headers"]


def test_nginx_example_whale_keeps_internal_routes_internal(proxy):
    _, port = proxy
    for path in ("/count_now", "/flush_hail", "/metrics", "/health", "/count", "/count.gif"):
        for headers in ({}, LOGGED_IN, FORGED):
            status, _, _ = fetch(port, WHALE, path, source=OUTSIDE, headers=headers)
            assert status == 403, (path, headers)
        status, _, body = fetch(port, WHALE, path, source="127.0.0.1")
        assert status == 200, path
        seen = passed_on(body)
        assert seen["path"] == path and "x-hailwhale-key" not in seen["headers"]
