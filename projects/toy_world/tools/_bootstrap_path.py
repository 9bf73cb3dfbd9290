# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Make ``python projects/toy_world/tools/X.py`` work from a plain clone: the
repository root goes first on ``sys.path`` so ``import mmseg_zegot`` finds
this checkout and ``projects.toy_world.toy_world`` is importable.

Importing the project's package imports mmseg_zegot and its stack, which
warn on import about things a user of these tools cannot act on
(setuptools' deprecation of ``pkg_resources``, which MMEngine imports;
mmcv-lite's missing deformable attention, which ZegOT does not use): those
two warnings are filtered here, before any import (the tools the benchmark
runs get ``PYTHONWARNINGS=ignore`` and log to files).
"""
import os.path as osp
import sys
import warnings

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

#: Messages of the stack's import-time warnings, filtered.
NOISE = (r'pkg_resources is deprecated',
         r'Fail to import ``MultiScaleDeformableAttention``')
for _pattern in NOISE:
    warnings.filterwarnings('ignore', message=_pattern)
