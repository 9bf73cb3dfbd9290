# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy CLIP of the toy world: its open_clip config and a few helpers.

:data:`TOY_CLIP_CFG` is an inline open_clip model config (``CLIP(**cfg)``):
a 64 px ViT with 8 px patches (an 8×8 patch grid) and a small text
transformer with CLIP's real 49408-token BPE vocabulary, so class names and
prompts are tokenised exactly as for the real CLIP.
``projects/toy_world/tools/pretrain_clip.py`` trains it contrastively on
image-caption pairs of :mod:`~projects.toy_world.toy_world.world` whose
captions (:mod:`~projects.toy_world.toy_world.captions`) name every
category, unseen ones included, as web-scale pretraining names every
concept.

Nothing here registers, downloads or builds anything at import time.
"""
import copy
import functools
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor, nn

__all__ = [
    'TOY_CLIP_CFG', 'TOY_PROMPT', 'build_toy_clip', 'encode_class_names',
    'normalize_images', 'patch_embeddings', 'tokenize'
]

#: The toy CLIP (open_clip ``CLIP(**TOY_CLIP_CFG)``; GELU, class-token pool).
#: ``quick_gelu=False`` is open_clip's default, written out so that the saved
#: config (the project's ``assets/toy_clip/toy_clip.json``) records the
#: activation and a QuickGELU build of the toy weights is refused.
TOY_CLIP_CFG = dict(
    embed_dim=64,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, patch_size=8, layers=6, width=128,
                    head_width=32, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=4,
                  layers=3, mlp_ratio=2.0),
)

#: The prompt of zero-shot classification and of the dense baseline.
TOY_PROMPT = 'a photo of a {}.'

#: The mean and std (RGB, 0-255) of CLIP's input normalisation, as the
#: segmentors' ``SegDataPreProcessor`` takes them.
CLIP_MEAN = tuple(255.0 * m for m in OPENAI_DATASET_MEAN)
CLIP_STD = tuple(255.0 * s for s in OPENAI_DATASET_STD)


def build_toy_clip(cfg: Optional[dict] = None) -> nn.Module:
    """``open_clip.CLIP(**cfg)`` (random init), default :data:`TOY_CLIP_CFG`.
    """
    import open_clip
    return open_clip.CLIP(**copy.deepcopy(cfg or TOY_CLIP_CFG))


def tokenize(texts: Sequence[str], context_length: int = 32) -> Tensor:
    """CLIP's BPE tokens (open_clip's ``SimpleTokenizer``), B×context."""
    return _tokenizer(context_length)(list(texts))


@functools.cache
def _tokenizer(context_length: int):
    from open_clip.tokenizer import SimpleTokenizer
    return SimpleTokenizer(context_length=context_length)


def normalize_images(images: np.ndarray) -> Tensor:
    """B×H×W×3 RGB uint8 images to CLIP-normalised B×3×H×W float tensors."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x.float() - mean) / std


@torch.no_grad()
def encode_class_names(model: nn.Module, names: Sequence[str],
                       prompt: str = TOY_PROMPT) -> Tensor:
    """L2-normalised text embeddings (K×C) of ``prompt`` for each name."""
    context = model.positional_embedding.shape[0]
    tokens = tokenize([prompt.format(n) for n in names], context)
    return F.normalize(model.encode_text(tokens), dim=-1)


def patch_embeddings(visual: nn.Module, images: Tensor,
                     layers: Optional[Sequence[int]] = None,
                     maskclip: bool = False) -> Dict[str, Tensor]:
    """Patch tokens mapped into the joint space (``ln_post`` then ``proj``).

    The training-free dense baseline: a patch is classified by the class
    text embedding closest to its projected token.

    Args:
        visual (nn.Module): open_clip ``VisionTransformer`` at its
            pretraining resolution.
        images (Tensor): B×3×H×W normalised images.
        layers (Sequence[int], optional): 0-based blocks whose output patch
            tokens to project. Default: the last one.
        maskclip (bool): Also return ``'maskclip'``: MaskCLIP's (Zhou et
            al., ECCV 2022) value path of the last block (``ln_1``, value
            and output projections; attention, residual and MLP skipped).

    Returns:
        dict[str, Tensor]: ``'layer{i}'`` (and ``'maskclip'``) →
        L2-normalised B×C×h×w maps.
    """
    depth = len(visual.transformer.resblocks)
    layers = [depth - 1] if layers is None else [i % depth for i in layers]
    batch = images.shape[0]
    x = visual._embeds(images)
    grid = visual.grid_size
    outputs: Dict[str, Tensor] = {}

    def project(tokens: Tensor) -> Tensor:
        out = visual.ln_post(tokens) @ visual.proj
        out = out.reshape(batch, *grid, -1).permute(0, 3, 1, 2)
        return F.normalize(out, dim=1)

    for index, block in enumerate(visual.transformer.resblocks):
        if maskclip and index == depth - 1:
            attn = block.attn
            width = attn.embed_dim
            value = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width:],
                             attn.in_proj_bias[2 * width:])
            outputs['maskclip'] = project(attn.out_proj(value)[:, 1:])
        x = block(x)
        if index in layers:
            outputs[f'layer{index}'] = project(x[:, 1:])
    return outputs
