# Copyright (c) mmseg_zegot contributors. All rights reserved.
from . import transforms  # noqa: F401
from .file_checks import CorruptedFileError, check_sample_files
from .splits import (
    SPLITS,
    ZeroShotSplit,
    get_split,
    make_split,
    register_split,
    resolve_split,
)
from .zero_shot import (
    ZegOTCOCOStuffDataset,
    ZegOTPascalContext59Dataset,
    ZegOTPascalVOC20Dataset,
    ZegOTZeroShotDataset,
    ZeroShotDatasetMixin,
)

__all__ = [
    'CorruptedFileError', 'check_sample_files', 'SPLITS', 'ZeroShotSplit',
    'get_split', 'make_split',
    'ZeroShotDatasetMixin', 'ZegOTPascalVOC20Dataset',
    'ZegOTPascalContext59Dataset', 'ZegOTCOCOStuffDataset',
    'ZegOTZeroShotDataset', 'register_split', 'resolve_split'
]
