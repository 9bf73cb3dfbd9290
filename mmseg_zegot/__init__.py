# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT for mmsegmentation 1.x.

``import mmseg_zegot`` (or ``custom_imports=dict(imports=['mmseg_zegot'])`` in
a config) checks the mmcv version, makes ``mmseg.models`` importable on
mmcv-lite (only when mmcv's compiled ops are missing:
:mod:`mmseg_zegot.compat.mmcv_ops`) and registers every component in mmseg's
registries. It changes nothing else in other libraries: checkpoint loading
with ``weights_only=True`` is the opt-in :mod:`mmseg_zegot.safe_loading`,
which our configs and tools use. Nothing is downloaded or built.
"""
import mmcv

from .compat import check_mmcv_version, install_mmcv_ops_fallback
from .version import __version__

check_mmcv_version(mmcv.__version__)
install_mmcv_ops_fallback()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
