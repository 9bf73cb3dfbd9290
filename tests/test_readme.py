# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Every command in README.md is valid and exercised somewhere.

Each shell command of the README's ``shell`` blocks must name a tool and
configs that exist, parse with the tool's own argument parser, and be one
that a test (or the CI, for ``make test``) runs for real: :data:`COVERAGE`
maps it to that test file, which must mention the tool. A command added to
the README without such a test fails here.
"""
import importlib.util
import os
import os.path as osp
import re
import shlex
import sys

import pytest

from mmseg_zegot.utils import load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: What runs each README command for real: (test file, string it contains).
COVERAGE = {
    'make demo': ('projects/toy_world/tests/test_main_job.py',
                  'run_benchmark.py'),
    'make test': ('.ci/run', 'make test'),
    'tools/train.py': ('tests/test_tools/test_train_test_resume.py',
                       'train.py'),
    'tools/test.py': ('tests/test_tools/test_train_test_resume.py',
                      'test.py'),
    'tools/dist_train.sh': ('tests/test_reliability/test_distributed.py',
                            'dist_train.sh'),
    'tools/dist_test.sh': ('tests/test_reliability/test_distributed.py',
                           'dist_test.sh'),
    'tools/check_dataset.py': ('tests/test_tools/test_check_dataset.py',
                               'check_dataset.py'),
    'tools/demo.py': ('tests/test_tools/test_demo.py', 'demo.py'),
    'tools/analysis/zero_shot_errors.py': (
        'tests/test_tools/test_zero_shot_errors_tool.py',
        'zero_shot_errors.py'),
    'tools/publish_checkpoint.py': (
        'tests/test_tools/test_publish_checkpoint.py',
        'publish_checkpoint.py'),
    'tools/convert_checkpoint.py': ('tests/test_utils/test_checkpoint.py',
                                    'convert_checkpoint.py'),
    # The pinned install is what tools/bootstrap.sh runs for every test run.
    'pip install': ('tools/bootstrap.sh', 'requirements/constraints.txt'),
    'python -m mmseg_zegot.check_env': (
        'tests/test_utils/test_collect_env.py', 'check_env'),
    # Needs the network; the file it writes (open_clip's state dict and its
    # activation, save_clip_weights's format) is what this test loads.
    'python -c': ('tests/test_models/test_utils/test_clip_utils.py',
                  'def test_recorded_activation_is_used_and_enforced'),
    'mkdir': None,  # plain shell
    'cp': None,
}


def readme_commands():
    """The commands of the README's ``shell`` blocks, continuation lines
    joined and comments dropped."""
    with open(osp.join(REPO, 'README.md')) as file:
        text = file.read()
    commands = []
    for block in re.findall(r'```shell\n(.*?)```', text, flags=re.S):
        block = block.replace('\\\n', ' ')
        for line in block.splitlines():
            line = re.sub(r'(^|\s)#.*$', '', line).strip()
            commands.extend(part.strip() for part in line.split('&&')
                            if part.strip())
    return commands


def coverage_key(command: str) -> str:
    words = shlex.split(command)
    if words[0] == 'python' and len(words) > 1 and words[1].startswith(
            'tools/'):
        return words[1]
    if words[0].startswith('tools/'):
        return words[0]
    for key in COVERAGE:
        if command.startswith(key):
            return key
    raise AssertionError(f'README command with no known runner: {command}')


def parse_tool_args(script: str, args, monkeypatch):
    """Parse ``args`` with the tool's own ``parse_args``."""
    monkeypatch.syspath_prepend(osp.join(REPO, osp.dirname(script)))
    monkeypatch.setattr(os, 'environ', dict(os.environ))
    monkeypatch.setattr(sys, 'argv', [script, *args])
    name = 'readme_' + osp.splitext(osp.basename(script))[0]
    spec = importlib.util.spec_from_file_location(name,
                                                  osp.join(REPO, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args()


COMMANDS = readme_commands()


def test_readme_has_the_two_commands_first():
    assert COMMANDS[:2] == ['make demo', 'make test']


@pytest.mark.parametrize('command', COMMANDS)
def test_readme_command_is_valid_and_covered(command, monkeypatch):
    key = coverage_key(command)
    assert key in COVERAGE, f'no test runs README command: {command}'
    if COVERAGE[key] is not None:
        path, needle = COVERAGE[key]
        with open(osp.join(REPO, path)) as file:
            assert needle in file.read(), (
                f'{path} was expected to run `{key}` (README: {command})')
    words = shlex.split(command)
    for word in words:
        if word.startswith(('configs/', 'projects/toy_world/configs/')):
            assert osp.isfile(osp.join(REPO, word)), word
            load_config(osp.join(REPO, word))
    if key.startswith('tools/'):
        script = words[1] if words[0] == 'python' else words[0]
        assert osp.isfile(osp.join(REPO, script)), script
        if script.endswith('.sh'):
            assert os.access(osp.join(REPO, script), os.X_OK), script
        else:
            parse_tool_args(script, words[2:], monkeypatch)


def test_readme_python_example_names_exist():
    with open(osp.join(REPO, 'README.md')) as file:
        text = file.read()
    for block in re.findall(r'```python\n(.*?)```', text, flags=re.S):
        for module, names in re.findall(r'from (\S+) import (.+)', block):
            imported = importlib.import_module(module)
            for name in names.split(','):
                assert hasattr(imported, name.strip()), (module, name)
