"""The layers import one way (.importlinter, ARCHITECTURE.md): a wrong-way import fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_the_cli_imports_no_redis_before_gevent_patches():
    """`serve`'s HTTP child patches gevent after `hailwhale.cli` is imported: nothing that
    module imports may pull in redis or ssl first (gevent warns, and ssl stays unpatched)."""
    code = ("import sys, hailwhale.cli; "
            "print(sorted(m for m in ('ssl', 'redis', 'bottle', 'gevent') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
