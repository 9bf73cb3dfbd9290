# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""mmseg_zegot.utils is the ground floor: it imports nothing of the models,
datasets, evaluation or engine packages."""
import ast
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / 'mmseg_zegot' / 'utils'
ABOVE = ('models', 'datasets', 'evaluation', 'engine', 'apis',
         'visualization')


def imported_modules(path: Path):
    """The absolute names of the modules ``path`` imports (relative imports
    resolved against mmseg_zegot.utils)."""
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ''
            else:
                base = ['mmseg_zegot', 'utils'][:3 - node.level]
                yield '.'.join(base + ([node.module] if node.module else []))


@pytest.mark.parametrize('path', sorted(UTILS.glob('*.py')),
                         ids=lambda p: p.name)
def test_utils_import_nothing_above_them(path):
    above = [name for name in imported_modules(path)
             if name.split('.')[:2] in (['mmseg_zegot', p] for p in ABOVE)]
    assert not above, f'{path.name} imports {above}'
