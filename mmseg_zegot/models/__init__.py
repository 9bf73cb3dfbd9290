# Copyright (c) mmseg_zegot contributors. All rights reserved.
from . import backbones, decode_heads, losses, segmentors, text_encoder, utils  # noqa: F401
