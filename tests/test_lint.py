"""ruff lint and format checks run inside the test command (the README's second command)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(exe).exists():
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)


# the scripts that write docs pages are code too (named one by one: ruff would also format the
# Python blocks inside the Markdown pages, which show output and are not meant to be formatted)
CODE = ("src", "tests", "benchmarks", *sorted(str(p.relative_to(ROOT)) for p in
                                             (ROOT / "docs").glob("*.py")))  # fmt: skip


def test_ruff_lint_clean():
    r = _ruff("check", *CODE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_clean():
    r = _ruff("format", "--check", *CODE)
    assert r.returncode == 0, r.stdout + r.stderr
