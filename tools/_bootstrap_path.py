# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Make ``python tools/X.py`` work from a plain clone: the repository root
goes first on ``sys.path`` so ``import mmseg_zegot`` finds this checkout."""
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
