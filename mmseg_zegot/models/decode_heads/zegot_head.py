# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's decode head: DLFA, global text alignment, MPOT, deep aggregation,
the class-query decoder, the two loss paths and calibrated inference.

Shape shorthand: B images, K classes of the current vocabulary, N prompts,
T tapped ViT layers, D ViT width, C joint CLIP width, h×w patch grid,
M = h·w pixel tokens, H×W label / image size.
"""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig, SampleList
from torch import Tensor

from ..losses.loss_paths import build_loss_paths
from ..utils.checks import check_choice, check_number
from ..utils.ensemble import ENSEMBLE_SPACES, ensemble_probabilities, log_prob_to_logit
from ..utils.mpot import mpot_score
from ..utils.sinkhorn import check_sinkhorn_args
from ..utils.text_alignment import TEXT_ALIGNMENT_INITS, align_text, init_text_alignment
from .dlfa import ZegOTDLFA
from .zegot_decoder import ZegOTTransformerDecoder

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


def _full_precision(device: torch.device):
    """A context that turns autocast off on ``device`` (float32 math)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


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

    1. DLFA (:class:`ZegOTDLFA`): ``f_l = normalize(P_l(z_l))`` (B×M×C),
       initialised from CLIP's ``ln_post``/``proj`` by the segmentor.
    2. Global text alignment: ``q = normalize(W [g ⊙ t ; t])`` (B×K×N×C).
    3. MPOT per tap (:func:`~mmseg_zegot.models.utils.mpot.mpot_score`):
       ``S*_l = sum_n M·N·T_l·S_l``, ``T_l`` the Sinkhorn plan of the cost
       ``1 - S_l``, ``S_l = <f_l, q>``.
    4. Deep aggregation: ``log P = mean_l logsigmoid(S*_l)``.
    5. Decoder (optional): class queries ``mean_n q`` attend to
       ``sum_l f_l`` (with ``score_to_decoder``, each class's attention is
       biased by its OT score ``logit(P)``); mask logits B×K×h×w.
    6. Losses: the ``loss_decode`` modules on the decoder logits and the
       ``loss_ot`` modules on ``logit(P)``, both upsampled to the labels.
    7. Inference: ``p = σ(λ·decoder logits + (1 - λ)·logit(P))`` (OTSeg's
       ensemble, :meth:`probabilities`), minus ``seen_bias`` on the
       seen-class columns.

    ``forward`` returns a dict of B×K×h×w tensors (see :meth:`forward`).

    The targets ``loss_by_feat`` reads are final: training columns or
    ``ignore_index``, mapped (and pseudo-labelled) by the segmentor
    (:mod:`mmseg_zegot.models.utils.zero_shot_targets`). The segmentor also
    sets the seen columns of the test vocabulary (:meth:`set_seen_mask`).

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
        text_alignment_init (str): ``'trunc_normal'`` (ZegCLIP's, std
            0.02) or ``'identity'`` (``q = t`` at step 0, see
            :func:`~mmseg_zegot.models.utils.text_alignment.init_text_alignment`).
            Defaults to ``'trunc_normal'``.
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
            pseudo-labels: ``'logits'`` (OTSeg) or ``'probabilities'`` (an
            ablation), see :meth:`probabilities`. Defaults to ``'logits'``.
        score_to_decoder (bool): Feed the OT score to the decoder (the
            paper's main figure): ``logit(P)`` of each class, times a
            learnable gain per layer (initialised to 1), is added to that
            class query's cross-attention logits in every decoder layer but
            the last (whose attention scores are the mask logits). Needs a
            decoder of at least 2 layers. Defaults to False.
        seen_bias (float): >= 0, subtracted from the seen-class
            probabilities at inference. Defaults to 0.1.
        ignore_index (int): Target ignored by the losses. Defaults to 255.
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
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None):
        if init_cfg is not None:
            raise ValueError(
                f'ZegOTHead does not support init_cfg (got {init_cfg!r}): '
                'init_weights() initialises it, and ZegOTSegmentor copies '
                "CLIP's projection into the DLFA projections.")
        for key, value in (('in_channels', in_channels),
                           ('channels', channels), ('num_classes', num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{key} must be a positive integer, got {value!r} '
                    '(ZegOTSegmentor fills it from the image encoder / '
                    'class_names when it is None).')
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if not in_index or any(not isinstance(i, int) or isinstance(i, bool)
                               for i in in_index):
            raise ValueError('in_index must be a non-empty sequence of tap '
                             f'indices, got {in_index!r}')
        flag = (True, False)
        for key, value, allowed in (
            ('dlfa_projection', dlfa_projection, ('learned', 'frozen')),
            ('use_ot', use_ot, flag), ('text_alignment', text_alignment, flag),
            ('score_to_decoder', score_to_decoder, flag),
            ('text_alignment_init', text_alignment_init, TEXT_ALIGNMENT_INITS),
            ('ensemble', ensemble, ENSEMBLE_SPACES)):
            check_choice(value, key, allowed)
        ot_epsilon = check_sinkhorn_args(ot_epsilon, ot_iters, ot_grad)
        ensemble_weight = check_number(ensemble_weight, 'ensemble_weight',
                                       0.0, 1.0)
        seen_bias = check_number(seen_bias, 'seen_bias', 0.0, float('inf'))
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
        self.loss_decode, self.loss_ot = build_loss_paths(
            loss_decode=loss_decode, loss_ot=loss_ot)

        # 1. DLFA projections, one per tap.
        self.dlfa = ZegOTDLFA(in_channels, channels, len(in_index),
                              frozen=dlfa_projection == 'frozen')
        self.dlfa_projection = dlfa_projection
        # 2. Global text alignment (ZegCLIP's relationship descriptor).
        self.text_align = (nn.Linear(2 * channels, channels)
                           if text_alignment else None)
        self.text_alignment_init = text_alignment_init
        # 5. Decoder.
        self.decoder = None
        if decoder is not None:
            decoder = dict(decoder)
            unknown = set(decoder) - set(_DEFAULT_DECODER)
            if unknown:
                raise ValueError(
                    f'decoder has unknown keys {sorted(unknown)}; allowed: '
                    f'{sorted(_DEFAULT_DECODER)}')
            self.decoder = ZegOTTransformerDecoder(
                channels, score_bias=score_to_decoder, **decoder)
        if score_to_decoder and (self.decoder is None
                                 or not self.decoder.layers):
            raise ValueError(
                'score_to_decoder=True feeds the OT score to the cross-'
                'attention of the decoder layers before the last, so it '
                'needs a decoder with num_layers >= 2; got decoder='
                f'{decoder!r}.')
        self.use_ot = use_ot
        self.ot_epsilon = ot_epsilon
        self.ot_iters = ot_iters
        self.ot_grad = ot_grad
        self.seen_bias = seen_bias
        self.ensemble_weight = 0.0 if decoder is None else ensemble_weight
        self.ensemble = ensemble
        self.score_to_decoder = score_to_decoder
        # Set by the segmentor; never in a checkpoint.
        self.register_buffer('seen_mask', None, persistent=False)

    def init_weights(self) -> None:
        """The alignment Linear (``text_alignment_init``) and the decoder;
        ZegOTSegmentor sets the DLFA projections from the loaded CLIP."""
        if self.text_align is not None:
            init_text_alignment(self.text_align, self.text_alignment_init)
        if self.decoder is not None:
            self.decoder.init_weights()

    def set_seen_mask(self, seen_mask: Optional[Tensor]) -> None:
        """Set which test-vocabulary columns are seen classes ((K_all,)
        bool); they get ``- seen_bias`` at inference. None: no column."""
        if seen_mask is not None:
            seen_mask = torch.as_tensor(seen_mask, dtype=torch.bool)
        self.seen_mask = seen_mask

    def refined_score(self, feats: Tensor, queries: Tensor) -> Tensor:
        """MPOT (:func:`~mmseg_zegot.models.utils.mpot.mpot_score`) with this
        head's settings: f (T, B, M, C), q (B, K, N, C) -> S* (T, B, K, M)."""
        return mpot_score(feats, queries, use_ot=self.use_ot,
                          epsilon=self.ot_epsilon, num_iters=self.ot_iters,
                          grad_mode=self.ot_grad)

    def forward(self, inputs: Sequence) -> Dict[str, Tensor]:
        """Run the head (steps 1-5 of the class docstring).

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
            feats = self.dlfa([tap.float() for tap in taps])  # 1. T×B×M×C
            queries = align_text(global_embed.float(), text_embed.float(),
                                 self.text_align)  # 2. B×K×N×C
            scores = self.refined_score(feats, queries)  # 3. T×B×K×M
            # 4. Deep aggregation.
            log_prob = F.logsigmoid(scores).mean(dim=0)
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

    def upsample(self, seg_logits: Dict[str, Tensor],
                 size: Sequence[int]) -> Dict[str, Tensor]:
        """:meth:`forward`'s logits bilinearly resized to ``size`` (H, W),
        in float32 (also under autocast)."""
        return {
            key: resize(value.float(), size=size, mode='bilinear',
                        align_corners=self.align_corners)
            for key, value in seg_logits.items()
        }

    def probabilities(self, logits: Dict[str, Tensor]) -> Tensor:
        """The ensemble's (B, K, H, W) probabilities
        (:func:`~mmseg_zegot.models.utils.ensemble.ensemble_probabilities`)
        of same-sized logits, as used for inference and pseudo-labels."""
        return ensemble_probabilities(logits['score_logits'],
                                      logits.get('decoder_logits'),
                                      self.ensemble_weight, self.ensemble)

    def loss_by_feat(self, seg_logits: Dict[str, Tensor],
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of both paths against the targets.

        Args:
            seg_logits (dict[str, Tensor]): The output of :meth:`forward`.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``
                holding final targets: training columns or ``ignore_index``
                (see :mod:`mmseg_zegot.models.utils.zero_shot_targets`).

        Returns:
            dict[str, Tensor]: One entry per ``loss_decode`` (with a decoder)
            and ``loss_ot`` module, and ``acc_seg`` (%, not trained).
        """
        labels = self._stack_batch_gt(batch_data_samples).squeeze(1).long()
        logits = self.upsample(seg_logits, labels.shape[-2:])
        losses = {}
        paths = [(self.loss_ot, logits['score_logits'])]
        if self.decoder is not None:
            paths.insert(0, (self.loss_decode, logits['decoder_logits']))
        for modules, pred in paths:
            for loss in modules:
                losses[loss.loss_name] = loss(
                    pred, labels, ignore_index=self.ignore_index)
        with torch.no_grad():  # acc_seg (%): ensemble argmax, valid pixels
            valid = labels != self.ignore_index
            correct = (self.probabilities(logits).argmax(dim=1)
                       == labels) & valid
            losses['acc_seg'] = (correct.sum().float() * 100.0
                                 / valid.sum().clamp(min=1))
        return losses

    def predict_by_feat(self, seg_logits: Dict[str, Tensor],
                        batch_img_metas: List[dict]) -> Tensor:
        """Calibrated class scores at the input size.

        Both logit maps are upsampled (as mmseg's ``predict_by_feat`` does)
        before the ensemble (:meth:`probabilities`); then ``seen_bias`` is
        subtracted from the seen columns (:meth:`set_seen_mask`), OTSeg's
        ``semantic_inference``.

        Args:
            seg_logits (dict[str, Tensor]): The output of :meth:`forward`.
            batch_img_metas (list[dict]): Image metas; ``img_shape`` (a
                ``torch.Size`` in slide inference) or ``pad_shape`` give the
                size.

        Returns:
            Tensor: (B, K, H, W) scores, argmax = prediction.
        """
        meta = batch_img_metas[0]
        size = meta['img_shape']
        if not isinstance(size, torch.Size):
            size = meta.get('pad_shape', size)[:2]
        prob = self.probabilities(self.upsample(seg_logits, size))
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
