# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .zegot_decoder import ZegOTTransformerDecoder
from .zegot_head import ZegOTHead

__all__ = ['ZegOTHead', 'ZegOTTransformerDecoder']
