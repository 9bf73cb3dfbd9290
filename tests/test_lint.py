# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The linter is part of the test suite."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', str(REPO)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-5000:]
