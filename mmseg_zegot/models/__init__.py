# Copyright (c) mmseg_zegot contributors. All rights reserved.
from . import (backbones, decode_heads, losses, segmentors,  # noqa: F401
               text_encoder, utils)
