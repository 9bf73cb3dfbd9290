# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .zegot_segmentor import ZegOTSegmentor

__all__ = ['ZegOTSegmentor']
