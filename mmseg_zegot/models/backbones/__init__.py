# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .clip_vit import ZegOTCLIPVisionTransformer

__all__ = ['ZegOTCLIPVisionTransformer']
