# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .inferencer import ZegOTInferencer, check_vocabulary, collect_inputs

__all__ = ['ZegOTInferencer', 'check_vocabulary', 'collect_inputs']
