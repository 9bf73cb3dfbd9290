# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's decode head: DLFA, global text alignment, MPOT, deep aggregation,
the class-query decoder, the two loss paths and calibrated inference.

Shape shorthand: B images, K classes of the current vocabulary, N prompts,
T tapped ViT layers, D ViT width, C joint CLIP width, h×w patch grid,
M = h·w pixel tokens, H×W label / image size.
"""
import copy
import math
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_init
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig, SampleList
from torch import Tensor

from mmseg_zegot.models.utils.sinkhorn import OT_GRAD_MODES, sinkhorn

from .zegot_decoder import ZegOTTransformerDecoder

#: ``label_map`` value of pixels that get a pseudo-label (transductive).
PSEUDO_LABEL = -1
#: Allowed values of ``text_alignment_init``.
TEXT_ALIGNMENT_INITS = ('trunc_normal', 'identity')
#: Allowed values of ``ensemble``: where the two paths are mixed.
ENSEMBLE_SPACES = ('logits', 'probabilities')

_DEFAULT_DECODER = dict(num_layers=3, num_heads=8, ffn_ratio=4, dropout=0.1)
_DEFAULT_LOSS_DECODE = (
    dict(type='ZegOTFocalLoss', alpha=0.25, gamma=2.0, loss_weight=100.0,
         loss_name='loss_focal'),
    dict(type='ZegOTDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
)
_DEFAULT_LOSS_OT = (
    dict(type='ZegOTFocalLoss', alpha=0.25, gamma=2.0, loss_weight=100.0,
         loss_name='loss_focal_ot'),
    dict(type='ZegOTDiceLoss', loss_weight=1.0, loss_name='loss_dice_ot'),
)


def log_prob_to_logit(log_prob: Tensor) -> Tensor:
    """``logit(P) = log P - log(1 - P)`` from ``log P``, without forming P.

    ``log(1 - P)`` is ``log1mexp(log P)`` (Mächler 2012): ``log(-expm1(x))``
    for ``x > -log 2``, ``log1p(-exp(x))`` otherwise. Each branch is
    evaluated on its own clamped input so neither produces inf/NaN values or
    gradients. ``log P`` is clamped below 0 (P = 1 exactly would be an
    infinite logit), bounding the logit by about 87 in float32.

    Args:
        log_prob (Tensor): ``log P``, any shape, values <= 0.

    Returns:
        Tensor: ``logit(P)``, same shape.
    """
    log_half = -math.log(2.0)
    x = log_prob.clamp(max=-torch.finfo(log_prob.dtype).tiny)
    near_one = torch.log(-torch.expm1(x.clamp(min=log_half)))
    far = torch.log1p(-torch.exp(x.clamp(max=log_half)))
    return x - torch.where(x > log_half, near_one, far)


def ensemble_probabilities(score_logits: Tensor,
                           decoder_logits: Optional[Tensor], weight: float,
                           space: str) -> Tensor:
    """Class probabilities from the OT score path and the decoder.

    ``space='logits'`` is OTSeg's ensemble (``decode_seg.py``, "Inference
    with ensemble", and its transductive pseudo-labels): one sigmoid of the
    mixed logits, ``p = σ(λ·decoder + (1 - λ)·S)``, with ``S = logit(P)``.
    ``space='probabilities'`` averages the two paths' probabilities,
    ``p = λ·σ(decoder) + (1 - λ)·σ(S)`` (an ablation).

    Args:
        score_logits (Tensor): ``logit(P)`` of the OT score path, any shape.
        decoder_logits (Tensor, optional): The decoder's logits, same shape;
            None for a decoder-free head.
        weight (float): λ in [0, 1]; 0 (or no decoder) gives ``σ(S)``.
        space (str): ``'logits'`` or ``'probabilities'``.

    Returns:
        Tensor: Probabilities, same shape, a new tensor.
    """
    if decoder_logits is None or weight == 0:
        return score_logits.sigmoid()
    if space == 'logits':
        return torch.lerp(score_logits, decoder_logits, weight).sigmoid_()
    return torch.lerp(score_logits.sigmoid(), decoder_logits.sigmoid(),
                      weight)


def _full_precision(device: torch.device):
    """A context that turns autocast off on ``device`` (float32 math)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


def _check_probability(value, key: str, low: float, high: float) -> float:
    """``float(value)`` if it lies in ``[low, high]``, else ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float('nan')
    if not low <= number <= high:
        raise ValueError(f'{key} must lie in [{low}, {high}], got {value!r}')
    return number


@torch.no_grad()
def init_text_alignment(linear: nn.Linear, mode: str) -> None:
    """Initialise the (2C -> C) alignment Linear of ``q = W [g ⊙ t ; t]``.

    Args:
        linear (nn.Linear): The alignment layer.
        mode (str): ``'trunc_normal'`` (ZegCLIP: std 0.02, bias 0) or
            ``'identity'`` (``W = [0 | I]``, bias 0, so that ``q = t``).
    """
    if mode == 'trunc_normal':
        trunc_normal_init(linear, std=0.02, bias=0.0)
        return
    c = linear.out_features
    linear.weight.zero_()
    linear.weight[:, c:].copy_(torch.eye(c))
    linear.bias.zero_()


@MODELS.register_module()
class ZegOTHead(BaseDecodeHead):
    """The decode head of ZegOT.

    ZegOT: Kim, Oh and Ye, "ZegOT: Zero-shot Segmentation Through Optimal
    Transport of Text Prompts" (arXiv 2301.12171). This is the head of the
    project's method spec (``zegot_method.md`` §2, §4-§9); items there marked
    [ref] follow ZegCLIP (Zhou et al., CVPR 2023) and OTSeg (Kim et al.,
    arXiv 2403.14183), items marked [ours] are the config keys below.

    Pipeline, for the taps ``z_l`` (B×D×h×w) of the frozen CLIP ViT, its
    global embedding ``g`` (B×C) and the prompt embeddings ``t`` (K×N×C):

    1. DLFA: ``f_l = normalize(P_l(z_l))`` (B×M×C) with a per-tap
       ``P_l = LayerNorm(D) -> Linear(D->C, no bias)``, initialised from
       CLIP's ``ln_post``/``proj`` by :meth:`init_dlfa_from_clip`.
    2. Global text alignment: ``q = normalize(W [g ⊙ t ; t])`` (B×K×N×C).
    3. MPOT per tap: ``S_l = <f_l, q>`` (B×K×M×N); Sinkhorn plan ``T_l`` for
       the cost ``1 - S_l`` (uniform marginals); refined score
       ``S*_l = sum_n M·N·T_l·S_l`` (B×K×h×w).
    4. Deep aggregation: ``log P = mean_l logsigmoid(S*_l)``.
    5. Decoder (optional): class queries ``mean_n q`` attend to
       ``sum_l f_l`` (with ``score_to_decoder``, each class's attention is
       biased by its OT score ``logit(P)``); mask logits B×K×h×w.
    6. Losses: the ``loss_decode`` modules on the decoder logits and the
       ``loss_ot`` modules on ``logit(P)``, both upsampled to the labels.
    7. Inference: ``p = σ(λ·decoder logits + (1 - λ)·logit(P))`` (OTSeg's
       ensemble; see :func:`ensemble_probabilities`), minus ``seen_bias`` on
       the seen-class columns.

    ``forward`` returns a dict of B×K×h×w tensors (see :meth:`forward`).

    The class-index bookkeeping is done by the segmentor through
    :meth:`set_label_map` (dataset labels -> training columns) and
    :meth:`set_seen_mask` (seen columns of the test vocabulary).

    Args:
        in_channels (int): D, the ViT width of every tap.
        channels (int): C, the joint CLIP width (of ``g`` and ``t``).
        num_classes (int): Number of classes of the dataset (the test
            vocabulary). The columns of a forward are those of the
            vocabulary it is given.
        in_index (Sequence[int]): Which taps of the image encoder to use.
            One tap gives ZegOT-Shallow. Defaults to (0, 1, 2, 3).
        dlfa_projection (str): ``'learned'`` or ``'frozen'`` (the DLFA
            projections keep their CLIP initialisation). Defaults to
            ``'learned'``.
        use_ot (bool): False replaces the Sinkhorn plan by the uniform one
            (``S* = sum_n S``), for ablations. Defaults to True.
        text_alignment (bool): The learned global text alignment; False
            uses the prompt embeddings as they are (``q = t``), e.g. for the
            training-free dense-CLIP baseline. Defaults to True.
        text_alignment_init (str): Initialisation of the alignment Linear:
            ``'trunc_normal'`` (ZegCLIP's: trunc-normal, std 0.02) or
            ``'identity'`` (``q = t`` at step 0: identity on the ``t``
            half, zero on the ``g ⊙ t`` half, like the DLFA projections
            starting from CLIP's own). Defaults to ``'trunc_normal'``.
        ot_epsilon (float): Entropic regularisation of Sinkhorn. Defaults to
            0.05.
        ot_iters (int): Sinkhorn iterations. Defaults to 50.
        ot_grad (str): ``'detach'`` (constant plan) or ``'unrolled'``.
            Defaults to ``'detach'``.
        decoder (dict, optional): ``num_layers``, ``num_heads``,
            ``ffn_ratio``, ``dropout`` of the decoder; None gives the
            decoder-free head. Defaults to 3 layers, 8 heads, FFN 4C,
            dropout 0.1.
        loss_decode (dict | Sequence[dict]): Losses on the decoder logits.
            Defaults to focal (×100, ``loss_focal``) + dice (×1,
            ``loss_dice``).
        loss_ot (dict | Sequence[dict]): Losses on the OT score path.
            Defaults to focal (×100, ``loss_focal_ot``) + dice (×1,
            ``loss_dice_ot``).
        ensemble_weight (float): λ in [0, 1]; 0 without a decoder.
            Defaults to 0.5.
        ensemble (str): Where the paths are mixed, for inference and
            pseudo-labels: ``'logits'`` (OTSeg: one sigmoid of the mixed
            logits) or ``'probabilities'`` (mean of the two sigmoids, an
            ablation). Defaults to ``'logits'``.
        score_to_decoder (bool): Feed the OT score to the decoder (the
            paper's main figure): ``logit(P)`` of each class, times a
            learnable gain per layer (initialised to 1), is added to that
            class query's cross-attention logits in every decoder layer but
            the last (whose attention scores are the mask logits). Needs a
            decoder of at least 2 layers. Defaults to False.
        seen_bias (float): >= 0, subtracted from the seen-class
            probabilities at inference. Defaults to 0.1.
        ignore_index (int): Label ignored by the losses. Defaults to 255.
        unlabeled_index (int, optional): Label of the pixels whose class
            ``ZegOTZeroShotLabels`` hid in the transductive setting: they
            are pseudo-labelled (ignored without ``pseudo_label_mask``).
            None: no such label. Defaults to 254.
        align_corners (bool): For the bilinear upsampling. Defaults to False.
        init_cfg (None): Not supported: see :meth:`init_weights`.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 *,
                 num_classes: int,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 dlfa_projection: str = 'learned',
                 use_ot: bool = True,
                 text_alignment: bool = True,
                 text_alignment_init: str = 'trunc_normal',
                 ot_epsilon: float = 0.05,
                 ot_iters: int = 50,
                 ot_grad: str = 'detach',
                 decoder: Optional[dict] = _DEFAULT_DECODER,
                 loss_decode: Union[dict, Sequence[dict]] = _DEFAULT_LOSS_DECODE,
                 loss_ot: Union[dict, Sequence[dict]] = _DEFAULT_LOSS_OT,
                 ensemble_weight: float = 0.5,
                 ensemble: str = 'logits',
                 score_to_decoder: bool = False,
                 seen_bias: float = 0.1,
                 ignore_index: int = 255,
                 unlabeled_index: Optional[int] = 254,
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None):
        if init_cfg is not None:
            raise ValueError(
                f'ZegOTHead does not support init_cfg (got {init_cfg!r}): '
                'init_weights() initialises it, and ZegOTSegmentor copies '
                "CLIP's projection into the DLFA projections.")
        for key, value in (('in_channels', in_channels),
                           ('channels', channels),
                           ('num_classes', num_classes)):
            if isinstance(value, bool) or not isinstance(value,
                                                         int) or value < 1:
                raise ValueError(
                    f'{key} must be a positive integer, got {value!r} '
                    '(ZegOTSegmentor fills it from the image encoder / '
                    'class_names when it is None).')
        if isinstance(in_index, int):
            in_index = (in_index, )
        in_index = list(in_index)
        if not in_index or any(
                isinstance(i, bool) or not isinstance(i, int)
                for i in in_index):
            raise ValueError('in_index must be a non-empty sequence of tap '
                             f'indices, got {in_index!r}')
        if dlfa_projection not in ('learned', 'frozen'):
            raise ValueError("dlfa_projection must be 'learned' or 'frozen', "
                             f'got {dlfa_projection!r}')
        if not isinstance(use_ot, bool):
            raise ValueError(f'use_ot must be a bool, got {use_ot!r}')
        if not isinstance(text_alignment, bool):
            raise ValueError(
                f'text_alignment must be a bool, got {text_alignment!r}')
        if text_alignment_init not in TEXT_ALIGNMENT_INITS:
            raise ValueError(
                f'text_alignment_init must be one of {TEXT_ALIGNMENT_INITS}, '
                f'got {text_alignment_init!r}')
        if ensemble not in ENSEMBLE_SPACES:
            raise ValueError(f'ensemble must be one of {ENSEMBLE_SPACES}, '
                             f'got {ensemble!r}')
        if not isinstance(score_to_decoder, bool):
            raise ValueError(
                f'score_to_decoder must be a bool, got {score_to_decoder!r}')
        if ot_grad not in OT_GRAD_MODES:
            raise ValueError(
                f'ot_grad must be one of {OT_GRAD_MODES}, got {ot_grad!r}')
        if not (isinstance(ot_epsilon, (int, float))
                and not isinstance(ot_epsilon, bool)
                and math.isfinite(ot_epsilon) and ot_epsilon > 0):
            raise ValueError(
                f'ot_epsilon must be a finite number > 0, got {ot_epsilon!r}')
        if isinstance(ot_iters, bool) or not isinstance(
                ot_iters, int) or ot_iters < 1:
            raise ValueError(
                f'ot_iters must be an integer >= 1, got {ot_iters!r}')
        if unlabeled_index is not None and (
                isinstance(unlabeled_index, bool)
                or not isinstance(unlabeled_index, int)
                or unlabeled_index == ignore_index):
            raise ValueError(
                'unlabeled_index must be None or an integer label other than '
                f'ignore_index ({ignore_index}), got {unlabeled_index!r}')
        ensemble_weight = _check_probability(ensemble_weight,
                                             'ensemble_weight', 0.0, 1.0)
        seen_bias = _check_probability(seen_bias, 'seen_bias', 0.0,
                                       float('inf'))
        super().__init__(
            in_channels=[in_channels] * len(in_index),
            channels=channels,
            num_classes=num_classes,
            dropout_ratio=0.0,
            in_index=in_index,
            input_transform='multiple_select',
            loss_decode=[],  # built below, with loss_ot
            ignore_index=ignore_index,
            align_corners=align_corners)
        del self.conv_seg  # the class columns come from the text embeddings

        if isinstance(loss_decode, dict):
            loss_decode = [loss_decode]
        if isinstance(loss_ot, dict):
            loss_ot = [loss_ot]
        self.loss_decode = nn.ModuleList(
            MODELS.build(cfg) for cfg in loss_decode)
        self.loss_ot = nn.ModuleList(MODELS.build(cfg) for cfg in loss_ot)
        names = [loss.loss_name for loss in self.loss_decode]
        names += [loss.loss_name for loss in self.loss_ot]
        bad = [name for name in names if not name.startswith('loss_')]
        if bad or len(set(names)) != len(names):
            raise ValueError(
                'The loss_name of every loss_decode and loss_ot entry must '
                "start with 'loss_' (else it is not back-propagated) and be "
                f'unique across both paths, got {names}')

        # 1. DLFA projections, one per tap.
        self.dlfa = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(in_channels),
                nn.Linear(in_channels, channels, bias=False))
            for _ in in_index)
        self.dlfa_projection = dlfa_projection
        if dlfa_projection == 'frozen':
            self.dlfa.requires_grad_(False)
        # 2. Global text alignment (ZegCLIP's relationship descriptor).
        self.text_align = (nn.Linear(2 * channels, channels)
                           if text_alignment else None)
        self.text_alignment_init = text_alignment_init
        # 5. Decoder.
        if decoder is not None:
            decoder = copy.deepcopy(dict(decoder))
            unknown = set(decoder) - set(_DEFAULT_DECODER)
            if unknown:
                raise ValueError(
                    f'decoder has unknown keys {sorted(unknown)}; allowed: '
                    f'{sorted(_DEFAULT_DECODER)}')
            self.decoder = ZegOTTransformerDecoder(
                channels, score_bias=score_to_decoder, **decoder)
        else:
            self.decoder = None
            ensemble_weight = 0.0
        if score_to_decoder and (self.decoder is None
                                 or not self.decoder.layers):
            raise ValueError(
                'score_to_decoder=True feeds the OT score to the cross-'
                'attention of the decoder layers before the last, so it '
                'needs a decoder with num_layers >= 2; got decoder='
                f'{decoder!r}.')
        self.use_ot = use_ot
        self.ot_epsilon = float(ot_epsilon)
        self.ot_iters = ot_iters
        self.ot_grad = ot_grad
        self.ensemble_weight = ensemble_weight
        self.ensemble = ensemble
        self.score_to_decoder = score_to_decoder
        self.seen_bias = seen_bias
        self.unlabeled_index = unlabeled_index
        # Class bookkeeping set by the segmentor; never in a checkpoint.
        self.register_buffer('label_map', None, persistent=False)
        self.register_buffer('pseudo_label_mask', None, persistent=False)
        self.register_buffer('seen_mask', None, persistent=False)

    # ------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------
    def init_weights(self) -> None:
        """The alignment Linear (``text_alignment_init``) and the decoder.
        The DLFA projections are initialised from CLIP by
        :meth:`init_dlfa_from_clip`, which ZegOTSegmentor calls once the
        image encoder has loaded CLIP."""
        if self.text_align is not None:
            init_text_alignment(self.text_align, self.text_alignment_init)
        if self.decoder is not None:
            self.decoder.init_weights()

    @torch.no_grad()
    def init_dlfa_from_clip(self, ln_weight: Tensor, ln_bias: Tensor,
                            proj: Tensor) -> None:
        """Set every DLFA projection to CLIP's output projection.

        Afterwards ``P_l(z) = ln_post(z) @ proj``, the frozen MaskCLIP-style
        projection of every tap.

        Args:
            ln_weight (Tensor): ``ln_post`` weight, (D,).
            ln_bias (Tensor): ``ln_post`` bias, (D,).
            proj (Tensor): CLIP's ``proj``, (D, C).
        """
        norm, linear = self.dlfa[0]
        expected = (norm.weight.shape, norm.bias.shape,
                    linear.weight.t().shape)
        got = (ln_weight.shape, ln_bias.shape, proj.shape)
        if got != expected:
            raise ValueError(
                f'CLIP output projection shapes {[tuple(s) for s in got]} do '
                'not match the DLFA projections '
                f'{[tuple(s) for s in expected]} (in_channels D, channels C)')
        for norm, linear in self.dlfa:
            norm.weight.copy_(ln_weight)
            norm.bias.copy_(ln_bias)
            linear.weight.copy_(proj.t())

    def set_label_map(self,
                      label_map: Optional[Tensor],
                      pseudo_label_mask: Optional[Tensor] = None) -> None:
        """Set the lookup from dataset labels to training columns.

        Args:
            label_map (Tensor, optional): (K_all,) int64: for each dataset
                class its column in the training vocabulary,
                ``ignore_index`` to ignore its pixels, or
                :data:`PSEUDO_LABEL` to pseudo-label them. None: labels are
                the columns already.
            pseudo_label_mask (Tensor, optional): (K_train,) bool, the
                columns a pseudo-label may take (the unseen classes). Needed
                if ``label_map`` holds :data:`PSEUDO_LABEL`.
        """
        if label_map is not None:
            label_map = torch.as_tensor(label_map, dtype=torch.long)
            if label_map.dim() != 1:
                raise ValueError('label_map must be one-dimensional, got '
                                 f'shape {tuple(label_map.shape)}')
            if (label_map == PSEUDO_LABEL).any() and pseudo_label_mask is None:
                raise ValueError('label_map asks for pseudo-labels but no '
                                 'pseudo_label_mask was given')
        if pseudo_label_mask is not None:
            pseudo_label_mask = torch.as_tensor(pseudo_label_mask,
                                                dtype=torch.bool)
        self.label_map = label_map
        self.pseudo_label_mask = pseudo_label_mask

    def set_seen_mask(self, seen_mask: Optional[Tensor]) -> None:
        """Set which test-vocabulary columns are seen classes ((K_all,)
        bool); they get ``- seen_bias`` at inference. None: no column."""
        if seen_mask is not None:
            seen_mask = torch.as_tensor(seen_mask, dtype=torch.bool)
        self.seen_mask = seen_mask

    # ------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------
    def project_taps(self, taps: Sequence[Tensor]) -> List[Tensor]:
        """DLFA: ``f_l = normalize(P_l(z_l))``.

        Args:
            taps (Sequence[Tensor]): The selected taps, each (B, D, h, w).

        Returns:
            list[Tensor]: One (B, M, C) tensor per tap, unit norm.
        """
        return [
            F.normalize(proj(tap.flatten(2).transpose(1, 2)), dim=-1)
            for proj, tap in zip(self.dlfa, taps)
        ]

    def align_text(self, global_embed: Tensor, text_embed: Tensor) -> Tensor:
        """Global text alignment ``q = normalize(W [g ⊙ t ; t])``, or
        ``q = t`` with ``text_alignment=False``.

        Args:
            global_embed (Tensor): g, (B, C).
            text_embed (Tensor): t, (K, N, C).

        Returns:
            Tensor: q, (B, K, N, C), unit norm.
        """
        t = text_embed.unsqueeze(0).expand(global_embed.size(0), -1, -1, -1)
        if self.text_align is None:
            return F.normalize(t, dim=-1)
        gt = global_embed[:, None, None, :] * t
        return F.normalize(self.text_align(torch.cat([gt, t], dim=-1)),
                           dim=-1)

    def refined_score(self, feats: Tensor, queries: Tensor) -> Tensor:
        """MPOT: ``S* = sum_n M·N·T·S`` with ``S = <f, q>``.

        Sinkhorn solves one (M, N) problem per (tap, image, class), in
        float32, all in one call. The cost ``1 - S`` of unit vectors spans at
        most 2 per pixel, which lets the solver use its kernel form (see
        :func:`~mmseg_zegot.models.utils.sinkhorn.sinkhorn`'s
        ``cost_spread``). With ``use_ot=False`` the plan is uniform
        (``1/(M·N)``), i.e. ``S* = sum_n S``.

        Args:
            feats (Tensor): f, (B, M, C), or (T, B, M, C) for T taps.
            queries (Tensor): q, (B, K, N, C).

        Returns:
            Tensor: S*, (B, K, M) (or (T, B, K, M)), float32.
        """
        scores = torch.einsum('...bmc,bknc->...bkmn', feats, queries).float()
        if not self.use_ot:
            return scores.sum(dim=-1)
        m, n = scores.shape[-2:]
        plan = sinkhorn(1.0 - scores, epsilon=self.ot_epsilon,
                        num_iters=self.ot_iters, grad_mode=self.ot_grad,
                        cost_spread=2.0)
        return (plan * scores).sum(dim=-1) * (m * n)

    def forward(self, inputs: Sequence) -> Dict[str, Tensor]:
        """Run the head.

        Args:
            inputs (Sequence): ``[img, (taps, global_embed), text_embed]``,
                the input contract of mmseg's ``MultimodalEncoderDecoder``:
                the image (B, 3, H, W; unused), the image encoder's output
                (a list of (B, D, h, w) taps and the (B, C) global
                embedding) and the (K, N, C) prompt embeddings of the
                current vocabulary.

        Returns:
            dict[str, Tensor]: Always of this form, each value
            (B, K, h, w): ``'score_logits'``, ``logit(P)`` of the deep OT
            score path (computed in float32, also under autocast), and, with
            a decoder, ``'decoder_logits'``.
        """
        _, (taps, global_embed), text_embed = inputs
        taps = self._transform_inputs(taps)
        b, _, h, w = taps[-1].shape
        if any(tap.shape[-2:] != (h, w) for tap in taps):
            raise ValueError('All taps must share one patch grid, got '
                             f'{[tuple(tap.shape[-2:]) for tap in taps]}')
        # The score path is cheap next to the ViT and feeds Sinkhorn, whose
        # eps = 0.05 amplifies rounding errors of S: run it in float32.
        with _full_precision(global_embed.device):
            feats = torch.stack(
                self.project_taps([tap.float() for tap in taps]))  # T×B×M×C
            queries = self.align_text(global_embed.float(),
                                      text_embed.float())
            log_prob = F.logsigmoid(self.refined_score(feats,
                                                       queries)).mean(dim=0)
            score_logits = log_prob_to_logit(log_prob)  # B×K×M
        k = queries.size(1)
        out = {'score_logits': score_logits.view(b, k, h, w)}
        if self.decoder is not None:
            memory = feats.sum(dim=0)
            logits = self.decoder(
                queries.mean(dim=2), memory,
                score_logits if self.score_to_decoder else None)
            out['decoder_logits'] = logits.view(b, k, h, w)
        return out

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------
    def _probabilities(self, logits: Dict[str, Tensor]) -> Tensor:
        """The ensemble's probabilities (:func:`ensemble_probabilities`) of
        same-sized logits."""
        return ensemble_probabilities(logits['score_logits'],
                                      logits.get('decoder_logits'),
                                      self.ensemble_weight, self.ensemble)

    def map_labels(self, gt: Tensor, num_columns: int) -> Tensor:
        """Dataset labels -> training columns through ``label_map``.

        Args:
            gt (Tensor): Dataset labels, (B, H, W).
            num_columns (int): K of the training vocabulary.

        Returns:
            Tensor: (B, H, W) int64 in ``[0, K)``, ``ignore_index`` or
            :data:`PSEUDO_LABEL` (classes mapped to it, and pixels labelled
            ``unlabeled_index``).

        Raises:
            ValueError: If a label is neither ``ignore_index``,
                ``unlabeled_index`` nor a class of the lookup (or, without a
                lookup, a column).
        """
        gt = gt.long()
        ignore = gt == self.ignore_index
        unlabeled = torch.zeros_like(ignore) if self.unlabeled_index is None \
            else gt == self.unlabeled_index
        if self.label_map is None:
            size = num_columns
            labels = gt
        else:
            label_map = self.label_map.to(gt.device)
            size = label_map.numel()
            labels = label_map[gt.clamp(0, size - 1)]
            wrong = ((label_map != self.ignore_index)
                     & (label_map != PSEUDO_LABEL)
                     & ((label_map < 0) | (label_map >= num_columns)))
            if wrong.any():
                raise ValueError(
                    f'label_map {label_map.tolist()} holds columns outside '
                    f'the {num_columns} columns of the training vocabulary')
        bad = ~ignore & ~unlabeled & ((gt < 0) | (gt >= size))
        if bad.any():
            raise ValueError(
                f'Ground truth holds labels {gt[bad].unique().tolist()} that '
                f'are neither ignore_index ({self.ignore_index}), '
                f'unlabeled_index ({self.unlabeled_index}) nor one of the '
                f'{size} classes the head was set up for. Check the dataset '
                "classes against the model's class_names.")
        labels = labels.masked_fill(unlabeled, PSEUDO_LABEL)
        return labels.masked_fill(ignore, self.ignore_index)

    @torch.no_grad()
    def assign_pseudo_labels(self, labels: Tensor,
                             logits: Dict[str, Tensor]) -> Tensor:
        """Replace :data:`PSEUDO_LABEL` pixels by the model's own guess.

        The guess is the argmax, over the columns of ``pseudo_label_mask``
        (the unseen classes), of the detached inference probabilities, the
        same ensemble as at inference (OTSeg's self-training:
        ``σ(0.5·score + 0.5·decoder)``).
        Without ``pseudo_label_mask`` such pixels are ignored.

        Args:
            labels (Tensor): (B, H, W) from :meth:`map_labels`.
            logits (dict[str, Tensor]): :meth:`forward`'s logits upsampled
                to (B, K, H, W).

        Returns:
            Tensor: (B, H, W) labels in ``[0, K)`` or ``ignore_index``.
        """
        pseudo = labels == PSEUDO_LABEL
        if self.pseudo_label_mask is None:
            return labels.masked_fill(pseudo, self.ignore_index)
        prob = self._probabilities(logits)
        allowed = self.pseudo_label_mask.to(prob.device)
        if allowed.numel() != prob.size(1):
            raise ValueError(
                f'pseudo_label_mask covers {allowed.numel()} columns but the '
                f'training vocabulary has {prob.size(1)}')
        prob = prob.masked_fill(~allowed[None, :, None, None], -1.0)
        return torch.where(pseudo, prob.argmax(dim=1), labels)

    def loss_by_feat(self, seg_logits: Dict[str, Tensor],
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of both paths against the mapped labels.

        Args:
            seg_logits (dict[str, Tensor]): The output of :meth:`forward`.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``
                in the dataset's class indices.

        Returns:
            dict[str, Tensor]: One entry per ``loss_decode`` (with a decoder)
            and ``loss_ot`` module, and ``acc_seg`` (%, not trained).
        """
        gt = self._stack_batch_gt(batch_data_samples).squeeze(1)
        num_columns = seg_logits['score_logits'].size(1)
        labels = self.map_labels(gt, num_columns)
        logits = {  # losses in float32, also under autocast
            key: resize(value.float(), size=labels.shape[-2:],
                        mode='bilinear', align_corners=self.align_corners)
            for key, value in seg_logits.items()
        }
        labels = self.assign_pseudo_labels(labels, logits)

        losses = {}
        paths = [(self.loss_ot, logits['score_logits'])]
        if self.decoder is not None:
            paths.insert(0, (self.loss_decode, logits['decoder_logits']))
        for modules, pred in paths:
            for loss in modules:
                losses[loss.loss_name] = loss(
                    pred, labels, ignore_index=self.ignore_index)
        losses['acc_seg'] = self._accuracy(logits, labels)
        return losses

    @torch.no_grad()
    def _accuracy(self, logits: Dict[str, Tensor], labels: Tensor) -> Tensor:
        """Pixel accuracy (%) of the ensemble's argmax over valid pixels; 0
        if none."""
        valid = labels != self.ignore_index
        correct = (self._probabilities(logits).argmax(dim=1) == labels) & valid
        return correct.sum().float() * 100.0 / valid.sum().clamp(min=1)

    # ------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------
    def predict_by_feat(self, seg_logits: Dict[str, Tensor],
                        batch_img_metas: List[dict]) -> Tensor:
        """Calibrated class scores at the input size.

        Both logit maps are upsampled (as mmseg's ``predict_by_feat`` does)
        before the ensemble (:func:`ensemble_probabilities`); then
        ``seen_bias`` is subtracted from the seen columns
        (:meth:`set_seen_mask`), OTSeg's ``semantic_inference``.

        Args:
            seg_logits (dict[str, Tensor]): The output of :meth:`forward`.
            batch_img_metas (list[dict]): Image metas; ``img_shape`` (a
                ``torch.Size`` in slide inference) or ``pad_shape`` give the
                size.

        Returns:
            Tensor: (B, K, H, W) scores, argmax = prediction.
        """
        meta = batch_img_metas[0]
        if isinstance(meta['img_shape'], torch.Size):
            size = meta['img_shape']
        elif 'pad_shape' in meta:
            size = meta['pad_shape'][:2]
        else:
            size = meta['img_shape']
        logits = {
            key: resize(value.float(), size=size, mode='bilinear',
                        align_corners=self.align_corners)
            for key, value in seg_logits.items()
        }
        prob = self._probabilities(logits)
        if self.seen_mask is not None and self.seen_bias > 0:
            if self.seen_mask.numel() != prob.size(1):
                raise ValueError(
                    f'The seen mask covers {self.seen_mask.numel()} classes '
                    f'but the prediction has {prob.size(1)} columns: predict '
                    'with the test vocabulary (all classes).')
            seen = self.seen_mask.to(prob.device)
            bias = self.seen_bias * seen[None, :, None, None].to(prob.dtype)
            # In place when no graph is built (testing): the map is new and
            # (B, K, H, W) is the largest tensor of inference.
            prob = prob - bias if torch.is_grad_enabled() else prob.sub_(bias)
        return prob
