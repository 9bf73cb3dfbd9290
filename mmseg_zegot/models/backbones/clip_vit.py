# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The frozen open_clip ViT image encoder with DLFA feature taps.

Shapes: B batch, D ViT width, C joint CLIP width, H×W input, h×w =
⌈H/p⌉ × ⌈W/p⌉ patch grid (p the patch size), M = h·w patch tokens.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from open_clip.transformer import VisionTransformer
from torch import Tensor

from mmseg_zegot.models.utils.clip_build import build_clip
from mmseg_zegot.models.utils.frozen_clip import FrozenCLIPMixin


def interpolate_pos_embed(pos_embed: Tensor, src_grid: Tuple[int, int],
                          dst_grid: Tuple[int, int]) -> Tensor:
    """Resample ViT positional embeddings to another patch grid.

    The class-token position is kept; the patch positions are resampled
    bicubically (``align_corners=False``, antialiased), as open_clip's
    ``resize_pos_embed`` does at load time (open_clip, MIT licence).

    Args:
        pos_embed (Tensor): (1 + src_h·src_w)×D embeddings, class token first.
        src_grid (tuple[int, int]): The (src_h, src_w) grid they belong to.
        dst_grid (tuple[int, int]): The (h, w) grid wanted.

    Returns:
        Tensor: (1 + h·w)×D embeddings; ``pos_embed`` itself when the grids
        match.
    """
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    patch_pos = patch_pos.reshape(1, *src_grid, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos.float(), size=tuple(dst_grid),
                              mode='bicubic', align_corners=False,
                              antialias=True)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(-1, pos_embed.shape[1])
    return torch.cat([cls_pos, patch_pos.to(pos_embed.dtype)])


def contiguous_taps(first_tap: int, out_indices: Optional[Sequence[int]],
                    depth: int) -> Tuple[int, ...]:
    """The blocks ``first_tap .. depth - 1`` (``first_tap`` may be negative).

    Raises:
        ValueError: If ``out_indices`` is also given, or ``first_tap`` is not
            a block index of a ``depth``-layer ViT.
    """
    if out_indices is not None:
        raise ValueError(
            f'Give either `out_indices` ({tuple(out_indices)}) or `first_tap` '
            f'({first_tap}) of the image encoder, not both: set '
            'model.image_encoder.out_indices=None to tap the contiguous range '
            'from first_tap to the last block.')
    if isinstance(first_tap, bool) or not isinstance(
            first_tap, int) or not -depth <= first_tap < depth:
        raise ValueError(
            f'`first_tap` must be a block index in [0, {depth}) (negative '
            f'counts from the end) of the {depth}-layer ViT, got '
            f'{first_tap!r}.')
    return tuple(range(first_tap % depth, depth))


@MODELS.register_module()
class ZegOTCLIPVisionTransformer(FrozenCLIPMixin, BaseModule):
    """Frozen open_clip ViT returning DLFA taps and the global embedding.

    The image encoder of ZegOT (Kim, Oh, Ye, "ZegOT: Zero-shot Segmentation
    Through Optimal Transport of Text Prompts", arXiv 2301.12171): CLIP stays
    entirely frozen; the patch tokens of intermediate layers feed Deep Local
    Feature Alignment and the projected class token is the global image
    embedding. Inputs of any size are accepted: the positional embeddings
    are interpolated from the pretraining grid at forward time, and an input
    whose sides are not multiples of the patch size is first padded at the
    bottom and right to the next multiples (with zeros: CLIP's mean colour
    once normalised), as mmseg's ``VisionTransformer`` pads with
    ``patch_pad='corner'``. The taps then cover the padded image;
    :meth:`padded_size` gives its size, so that predictions can be resized
    to it and cropped back to the input.

    Frozen means: every parameter has ``requires_grad=False``, the tower is
    always in eval mode, forward builds no autograd graph, and
    :meth:`init_weights` loads the CLIP weights from ``pretrained`` once
    (see :class:`~mmseg_zegot.models.utils.frozen_clip.FrozenCLIPMixin`).

    Args:
        model_name (str): open_clip model name. Default: 'ViT-B-16'.
        pretrained (str, optional): Local CLIP checkpoint file (or an open_clip
            tag already in the local cache), loaded by :meth:`init_weights`.
            Default: None.
        model_cfg (dict | str, optional): open_clip model config (inline, or
            a JSON file path) overriding the named one. Default: None.
        quick_gelu (bool, optional): QuickGELU activations; None decides from
            ``pretrained`` (OpenAI weights need them). Default: None.
        out_indices (Sequence[int], optional): 0-based blocks whose patch
            tokens are returned (negative counts from the end); None with
            ``first_tap``. Default: (5, 7, 9, 11).
        first_tap (int, optional): Tap the contiguous range of blocks from
            ``first_tap`` to the last (the paper's ``∏_{i=n}^{L}``, with
            ``n = first_tap``, 0-based; negative counts from the end) instead
            of ``out_indices``, which must then be None. Default: None.
        output_global (bool): Return ``(taps, global)`` for ZegOT (True), or
            only the tuple of taps, the feature maps any stock mmseg head
            takes (False), e.g. a closed-set baseline on the frozen CLIP.
            Default: True.
        init_cfg (None): Not supported: the weights come from ``pretrained``.
    """

    cfg_key = 'model.image_encoder'

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 model_cfg: Union[dict, str, None] = None,
                 quick_gelu: Optional[bool] = None,
                 out_indices: Optional[Sequence[int]] = (5, 7, 9, 11),
                 first_tap: Optional[int] = None,
                 output_global: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError(
                'ZegOTCLIPVisionTransformer does not support `init_cfg` (got '
                f'{init_cfg!r}): it loads CLIP from `pretrained` in '
                'init_weights().')
        super().__init__()
        visual = build_clip(model_name, model_cfg=model_cfg,
                            quick_gelu=quick_gelu, pretrained=pretrained).visual
        if not isinstance(visual, VisionTransformer):
            raise ValueError(
                f'model_name={model_name!r} has a {type(visual).__name__} '
                "image tower; only open_clip's VisionTransformer is supported.")
        if visual.attn_pool is not None or visual.pool_type != 'tok':
            pooler = ('an attentional pooler' if visual.attn_pool is not None
                      else f'pool_type={visual.pool_type!r}')
            raise ValueError(
                f'model_name={model_name!r} pools its image tower with '
                f"{pooler}; the global embedding needs the class token "
                "(pool_type 'tok', attentional_pool False).")
        depth = len(visual.transformer.resblocks)
        if first_tap is not None:
            out_indices = contiguous_taps(first_tap, out_indices, depth)
        if not out_indices or any(
                isinstance(i, bool) or not isinstance(i, int)
                or not -depth <= i < depth for i in out_indices):
            raise ValueError(
                f'`out_indices` must be a non-empty sequence of block indices '
                f'in [0, {depth}) (negative counts from the end) for the '
                f'{depth}-layer ViT of model_name={model_name!r}, got '
                f'{out_indices!r}.')
        self.freeze_clip(visual)
        self.visual = visual
        self.model_name = model_name
        self.pretrained = pretrained
        self.out_indices = tuple(i % depth for i in out_indices)
        self.output_global = output_global

    @property
    def embed_dims(self) -> int:
        """D, the ViT width (channels of the taps)."""
        return self.visual.transformer.width

    @property
    def output_dims(self) -> int:
        """C, the joint image-text embedding width."""
        return self.visual.proj.shape[1]

    @property
    def patch_size(self) -> Tuple[int, int]:
        """The (height, width) of a patch in pixels."""
        return tuple(self.visual.patch_size)

    def padded_size(self, size: Sequence[int]) -> Tuple[int, int]:
        """The (height, width) an input of ``size`` is padded to: the next
        multiples of the patch size."""
        return tuple(-(-side // patch) * patch
                     for side, patch in zip(size, self.patch_size))

    @property
    def num_layers(self) -> int:
        """The number of transformer blocks."""
        return len(self.visual.transformer.resblocks)

    def output_projection(self) -> Tuple[Tensor, Tensor, Tensor]:
        """CLIP's output projection, for initialising DLFA projections.

        Returns:
            tuple[Tensor, Tensor, Tensor]: Detached copies of the ``ln_post``
            weight (D), bias (D) and the projection ``proj`` (D×C).
        """
        ln_post = self.visual.ln_post
        return (ln_post.weight.detach().clone(),
                ln_post.bias.detach().clone(),
                self.visual.proj.detach().clone())

    def train(self, mode: bool = True) -> 'ZegOTCLIPVisionTransformer':
        """Set the mode of the module; the CLIP tower always stays in eval."""
        super().train(mode)
        self.visual.eval()
        return self

    def init_weights(self) -> None:
        """Load the CLIP image tower from ``pretrained``."""
        self.load_frozen_clip(self.visual, 'visual')

    @torch.no_grad()
    def forward(
        self, inputs: Tensor
    ) -> Union[Tuple[List[Tensor], Tensor], Tuple[Tensor, ...]]:
        """Encode normalised images.

        Args:
            inputs (Tensor): B×3×H×W images, already normalised with CLIP's
                mean/std by the data preprocessor; any H, W (padded to
                :meth:`padded_size`).

        Returns:
            tuple[list[Tensor], Tensor]: The taps, one B×D×h×w map of patch
            tokens per ``out_indices`` entry (block outputs before ``ln_post``
            and projection, class token dropped), and the B×C global
            embedding: the final class token after ``ln_post`` and ``proj``,
            L2-normalised. With ``output_global=False``, the taps alone, as a
            tuple. The maps cover the padded input: h×w is
            :meth:`padded_size` divided by the patch size.
        """
        visual = self.visual
        batch, _, height, width = inputs.shape
        padded_h, padded_w = self.padded_size((height, width))
        inputs = F.pad(inputs, (0, padded_w - width, 0, padded_h - height))
        grid = (padded_h // self.patch_size[0], padded_w // self.patch_size[1])

        # open_clip's VisionTransformer._embeds with resampled positions.
        x = visual.conv1(inputs).flatten(2).transpose(1, 2)  # B×M×D
        cls_token = visual.class_embedding.to(x.dtype).expand(batch, 1, -1)
        pos_embed = interpolate_pos_embed(visual.positional_embedding,
                                          visual.grid_size, grid)
        x = torch.cat([cls_token, x], dim=1) + pos_embed.to(x.dtype)
        x = visual.ln_pre(visual.patch_dropout(x))

        take = sorted(set(self.out_indices))
        x, intermediates = visual.transformer.forward_intermediates(
            x, indices=take)  # B×(1+M)×D each
        by_index = dict(zip(take, intermediates))
        taps = [
            by_index[i][:, 1:].reshape(batch, *grid, -1).permute(
                0, 3, 1, 2).contiguous() for i in self.out_indices
        ]
        if not self.output_global:
            return tuple(taps)
        global_embed = visual.ln_post(x[:, 0]) @ visual.proj  # B×C
        # Normalised in float32: under fp16 autocast F.normalize's eps
        # (1e-12) rounds to 0, so a zero vector would give 0/0 = NaN.
        return taps, F.normalize(global_embed.float(), dim=-1).to(
            global_embed.dtype)
