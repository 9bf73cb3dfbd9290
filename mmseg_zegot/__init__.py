# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT for mmsegmentation 1.x.

``import mmseg_zegot`` (or ``custom_imports=dict(imports=['mmseg_zegot'])`` in
a config) checks the mmcv version, makes ``mmseg.models`` importable on
mmcv-lite, installs the weights-only checkpoint loader and registers every
component in mmseg's registries. Nothing is downloaded or built.
"""
import mmcv

from .compat import check_mmcv_version, install_mmcv_ops_fallback
from .version import __version__

check_mmcv_version(mmcv.__version__)
install_mmcv_ops_fallback()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .utils import register_safe_checkpoint_loader  # noqa: E402

register_safe_checkpoint_loader()

__all__ = ['__version__']
