# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .prompt_text_encoder import ZegOTPromptTextEncoder

__all__ = ['ZegOTPromptTextEncoder']
