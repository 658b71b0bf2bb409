"""The deployment examples parse: supervisord's own parser, and `nginx -t`."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_supervisord_example_runs_whale_hail_and_a_flusher(tmp_path):
    from supervisor.options import ServerOptions

    # The example runs as user `hailwhale`, which this machine need not have.
    example = (ROOT / "supervisord.conf.example").read_text()
    programs = tmp_path / "hailwhale.conf"
    programs.write_text(example.replace("user=hailwhale", f"user={getpass.getuser()}"))
    main = tmp_path / "supervisord.conf"
    main.write_text(f"[supervisord]\nlogfile={tmp_path}/s.log\npidfile={tmp_path}/s.pid\n"
                    f"[include]\nfiles={programs}\n")
    options = ServerOptions()
    options.configfile = str(main)
    options.process_config(do_usage=False)
    [group] = options.process_group_configs
    commands = {p.name: p.command for p in group.process_configs}
    assert set(commands) == {"whale", "hail", "flusher_00"}
    assert "hailwhale serve" in commands["whale"]
    assert "hailwhale hail" in commands["hail"]
    assert commands["flusher_00"].endswith("hailwhale flush")
    assert all(p.autorestart for p in group.process_configs)


def test_nginx_example_is_valid(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not nginx:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing: .ci/run installs it")
        pytest.skip("nginx is not installed (.ci/run installs it)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\n"
        "events {}\n"
        f"http {{\n access_log off;\n include {ROOT / 'nginx.conf.example'};\n}}\n"
    )
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    example = (ROOT / "nginx.conf.example").read_text()
    assert "proxy_pass http://hailwhale_whale" in example
    assert "location ~ ^/count(\\.gif)?$" in example
