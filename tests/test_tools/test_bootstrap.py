# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""tools/bootstrap.sh refuses a first install on a disk that cannot hold it.

``df`` and the interpreter are stand-ins on ``PATH``/``PYTHON``: the check
must read the free space of the venv's file system and either stop with a
message naming the need, the free space and the place, or go on to create
the venv (which the stand-in interpreter records instead of doing).
"""
import os
import os.path as osp
import stat
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_script(path, text):
    path.write_text('#!/usr/bin/env bash\n' + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_bootstrap(tmp_path, free_kib):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    write_script(
        bin_dir / 'df', 'echo "Filesystem 1024-blocks Used Available '
        'Capacity Mounted on"\n'
        f'echo "/dev/fake 999999999 1 {free_kib} 1% /"\n')
    calls = tmp_path / 'python_calls'
    write_script(tmp_path / 'python', f'echo "$*" >> {calls}\nexit 3\n')
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
               PYTHON=str(tmp_path / 'python'),
               VENV=str(tmp_path / 'envs' / 'venv'))
    (tmp_path / 'envs').mkdir()
    result = subprocess.run(['bash', 'tools/bootstrap.sh', 'runtime'],
                            cwd=REPO, env=env, capture_output=True, text=True)
    return result, calls


def test_first_install_refused_on_a_full_disk(tmp_path):
    result, calls = run_bootstrap(tmp_path, free_kib=300 * 1024)
    assert result.returncode == 1
    message = ' '.join(result.stderr.split())
    assert 'needs about 7000 MiB of free disk' in message
    assert f'the file system of {tmp_path / "envs"} has 300 MiB free' in (
        message)
    assert 'Free some space there' in message
    assert not calls.exists()  # no venv was started
    assert not (tmp_path / 'envs' / 'venv').exists()


@pytest.mark.parametrize('free_gib', [7, 50])
def test_first_install_goes_on_with_room(tmp_path, free_gib):
    result, calls = run_bootstrap(tmp_path, free_kib=free_gib * 1024**2)
    assert result.returncode == 3, result.stderr  # the stand-in python's
    assert 'setting up' in result.stdout
    assert calls.read_text().split() == [
        '-m', 'venv', str(tmp_path / 'envs' / 'venv')
    ]
