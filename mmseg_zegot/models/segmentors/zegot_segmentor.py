# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The ZegOT segmentor: frozen CLIP image encoder, learnable prompt text
encoder and :class:`~mmseg_zegot.models.decode_heads.ZegOTHead`, with the
class vocabularies of zero-shot training and testing.

Shape shorthand: B images, K classes of the current vocabulary (K_all
dataset classes, K_train training classes), N prompts, C joint CLIP width,
H×W image size.

Dataset labels become training targets here
(:meth:`ZegOTSegmentor.training_targets`) and nowhere else; the head
receives final targets. The segmentor, not the pipeline, is that place:
targets are columns of the model's training vocabulary, derived from the
model's ``class_names`` / ``seen_classes`` and ``setting``, which a pipeline
transform would have to repeat in every dataset config and keep in step with
the model; and transductive pseudo-labels need the model's own scores. So
the model is right with any pipeline, with or without ``ZegOTZeroShotLabels``
(its 255 and ``unlabeled_index`` labels are handled here).
"""
import logging
import math
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.models.segmentors import MultimodalEncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptSampleList, SampleList, add_prefix
from torch import Tensor

from mmseg_zegot.datasets.splits import (
    check_class_names,
    resolve_split,
    split_of_seen,
)
from mmseg_zegot.models.utils.zero_shot_targets import (
    SETTINGS,
    assign_pseudo_labels,
    map_labels,
    training_label_map,
)


@MODELS.register_module()
class ZegOTSegmentor(MultimodalEncoderDecoder):
    """ZegOT for zero-shot semantic segmentation.

    ZegOT: Kim, Oh and Ye, "ZegOT: Zero-shot Segmentation Through Optimal
    Transport of Text Prompts" (arXiv 2301.12171). Builds on mmseg's
    :class:`MultimodalEncoderDecoder` (input contract of the head:
    ``[img, image_encoder(img), text_encoder()]``) and fixes what it lacks
    for zero-shot training:

    * one input size (``asymetric_input=False``, no ``encoder_resolution``);
    * two vocabularies: training = the seen classes (``'inductive'``) or all
      classes (``'transductive'``, ``'fully'``); test = all classes. The
      text encoder is switched between them by :meth:`loss` and
      :meth:`predict` (re-tokenising only when the vocabulary changes);
    * the training targets (see the module docstring): dataset labels ->
      training columns, unseen pixels ignored (inductive) or pseudo-labelled
      from the model's own detached prediction restricted to the unseen
      classes (transductive); and the head's seen-class mask for the
      inference calibration;
    * ``mode='tensor'`` (:meth:`_forward`) passes the text features;
    * slide inference sizes its buffer with the test vocabulary;
    * :meth:`init_weights` copies CLIP's output projection into the head's
      DLFA projections once the image encoder has loaded CLIP.

    The head's ``num_classes``, ``in_channels``, ``channels`` and
    ``in_index`` may be left None: they are filled from ``class_names`` and
    the image encoder (``embed_dims``, ``output_dims``, every tap); given
    values are checked against them.

    Args:
        image_encoder (dict): Config of the image encoder
            (``ZegOTCLIPVisionTransformer``).
        text_encoder (dict): Config of the text encoder
            (``ZegOTPromptTextEncoder``); its vocabulary is set here.
        decode_head (dict): Config of the head (``ZegOTHead``).
        class_names (Sequence[str], optional): All classes of the dataset,
            in the order of its label indices.
        seen_classes (Sequence[str], optional): The seen subset of
            ``class_names``; None means all (no zero-shot split).
        zero_shot_split (str | dict, optional): Instead of the two above, a
            split name (``'voc'``, ``'context59'``, ``'coco-stuff'``) or
            ``dict(classes=[...], unseen_classes=[...])``: the same source of
            truth the datasets and the metric read.
        setting (str): ``'inductive'``, ``'transductive'`` or ``'fully'``.
            Outside ``'inductive'`` the head's ``seen_bias`` must be 0.
        unlabeled_index (int, optional): Label of the pixels whose class
            ``ZegOTZeroShotLabels`` hid in the transductive setting: they
            are pseudo-labelled (ignored outside ``'transductive'``). None:
            no such label. Defaults to 254.
        train_cfg (dict, optional): Training config (unused).
        test_cfg (dict, optional): ``mode`` ``'whole'`` (the default) or
            ``'slide'`` (with ``crop_size`` and ``stride``).
        data_preprocessor (dict, optional): A ``SegDataPreProcessor`` config
            with CLIP's mean/std.
        pretrained (None): Accepted for mmseg's ``init_model``, which sets
            it to None; any other value is an error (see ``init_cfg``).
        init_cfg (None): Not supported (CLIP comes from the encoders'
            ``pretrained``; use ``load_from`` for ZegOT checkpoints).
    """

    def __init__(self,
                 image_encoder: ConfigType,
                 text_encoder: ConfigType,
                 decode_head: ConfigType,
                 class_names: Optional[Sequence[str]] = None,
                 seen_classes: Optional[Sequence[str]] = None,
                 zero_shot_split: Union[str, Mapping, None] = None,
                 setting: str = 'inductive',
                 unlabeled_index: Optional[int] = 254,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptConfigType = None):
        if pretrained is not None:
            raise ValueError(
                f'ZegOTSegmentor does not take `pretrained` (got '
                f'{pretrained!r}): set `model.image_encoder.pretrained` and '
                '`model.text_encoder.pretrained` to the CLIP file, and load a '
                'trained ZegOT checkpoint with `load_from`.')
        if init_cfg is not None:
            raise ValueError(
                f'ZegOTSegmentor does not support init_cfg (got {init_cfg!r}):'
                ' the CLIP towers load `pretrained` themselves and a trained '
                'ZegOT checkpoint is loaded with `load_from`.')
        if zero_shot_split is not None:
            if class_names is not None or seen_classes is not None:
                raise ValueError(
                    'Set either `zero_shot_split` or `class_names` / '
                    '`seen_classes` of the ZegOTSegmentor, not both.')
            split = resolve_split(zero_shot_split)
        else:
            split = split_of_seen(class_names, seen_classes)
        class_names, seen_classes = split.classes, split.seen
        if setting not in SETTINGS:
            raise ValueError(
                f'setting must be one of {SETTINGS}, got {setting!r}')
        decode_head = dict(decode_head)
        if 'unlabeled_index' in decode_head:  # configs of earlier checkpoints
            unlabeled_index = decode_head.pop('unlabeled_index')
            print_log('decode_head.unlabeled_index is read as '
                      'model.unlabeled_index, where it belongs now.',
                      logger='current', level=logging.WARNING)
        num_classes = decode_head.get('num_classes')
        if num_classes is None:
            decode_head['num_classes'] = len(class_names)
        elif num_classes != len(class_names):
            raise ValueError(
                f'decode_head.num_classes={num_classes} does not match the '
                f'{len(class_names)} class_names; leave it None to fill it in')
        test_cfg = ConfigDict(dict(mode='whole') if test_cfg is None else
                              test_cfg)
        if test_cfg.get('mode') not in ('whole', 'slide'):
            raise ValueError("test_cfg.mode must be 'whole' or 'slide', got "
                             f"{test_cfg.get('mode')!r}")
        if test_cfg.mode == 'slide' and not {'crop_size', 'stride'} <= set(
                test_cfg):
            raise ValueError("test_cfg.mode='slide' needs test_cfg.crop_size "
                             'and test_cfg.stride')
        super().__init__(
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            decode_head=decode_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=None,
            asymetric_input=False,
            encoder_resolution=None)

        seen = set(seen_classes)
        self.class_names = class_names
        self.seen_classes = tuple(n for n in class_names if n in seen)
        self.setting = setting
        self.test_classes = class_names
        if setting == 'inductive':
            self.train_classes = self.seen_classes
        else:
            self.train_classes = class_names
        # The parent's slide inference sizes its buffer with out_channels.
        self.out_channels = len(self.test_classes)

        if setting != 'inductive' and self.decode_head.seen_bias != 0:
            raise ValueError(
                f"decode_head.seen_bias must be 0 with setting='{setting}' "
                f'(got {self.decode_head.seen_bias}): the seen-class '
                'calibration belongs to the inductive setting')
        ignore = self.decode_head.ignore_index
        if unlabeled_index is not None and (
                type(unlabeled_index) is not int or unlabeled_index == ignore
                or 0 <= unlabeled_index < len(class_names)):
            raise ValueError(
                'unlabeled_index must be None or an integer label outside '
                f'the {len(class_names)} class indices and other than '
                f'decode_head.ignore_index ({ignore}), got '
                f'{unlabeled_index!r} (the default is 254)')
        self.unlabeled_index = unlabeled_index
        seen_mask = torch.tensor([name in seen for name in class_names])
        label_map, pseudo_columns = training_label_map(seen_mask, setting,
                                                       ignore)
        # Bookkeeping derived from the config: never in a checkpoint.
        self.register_buffer('label_map', label_map, persistent=False)
        self.register_buffer('pseudo_label_columns', pseudo_columns,
                             persistent=False)
        self.decode_head.set_seen_mask(seen_mask)
        self._use_vocabulary(self.train_classes)
        self._check_input_sizes()

    def _check_input_sizes(self) -> None:
        """Check that the training input size fixed by the config (the
        preprocessor's pad ``size`` or ``size_divisor``) is a multiple of the
        patch size. The loss compares the head's patch-grid logits, resized
        to the label size, with the labels, so training inputs must be whole
        patches; test inputs of any size are padded by the image encoder and
        the scores cropped back (:meth:`encode_decode`)."""
        patch = getattr(self.image_encoder, 'patch_size', None)
        if patch is None:
            return
        preprocessor = self.data_preprocessor
        for key in ('size', 'size_divisor'):
            size = getattr(preprocessor, key, None)
            if size is None:
                continue
            pair = (size, size) if isinstance(size, int) else tuple(size)
            if any(s % p for s, p in zip(pair, patch)):
                fixed = (math.lcm(size, *patch) if isinstance(size, int) else
                         tuple(-(-s // p) * p for s, p in zip(pair, patch)))
                raise ValueError(
                    f'`model.data_preprocessor.{key}`={size} is not a '
                    f'multiple of the patch size {patch[0]}×{patch[1]} of '
                    'the image encoder (model_name='
                    f'{self.image_encoder.model_name!r}): training crops '
                    f'must be whole patches; use e.g. {fixed}.')

    def _init_decode_head(self, decode_head: ConfigType) -> None:
        """Fill or check the head's dimensions from the encoders, then build
        it (called by the parent after both encoders are built)."""
        encoder = self.image_encoder
        num_taps = len(encoder.out_indices)
        derived = dict(
            in_channels=encoder.embed_dims,
            channels=encoder.output_dims,
            in_index=tuple(range(num_taps)))
        for key, value in derived.items():
            given = decode_head.get(key)
            if given is None:
                decode_head[key] = value
            elif key != 'in_index' and given != value:
                raise ValueError(
                    f'decode_head.{key}={given} does not match the image '
                    f'encoder ({value}); leave it None to fill it in')
        in_index = decode_head['in_index']
        in_index = [in_index] if isinstance(in_index, int) else in_index
        if any(not -num_taps <= i < num_taps for i in in_index):
            raise ValueError(
                f'decode_head.in_index={tuple(in_index)} selects taps the '
                f'image encoder does not return (it returns {num_taps}: '
                f'out_indices={encoder.out_indices})')
        text_dims = getattr(self.text_encoder, 'output_dims', None)
        if text_dims is not None and text_dims != decode_head['channels']:
            raise ValueError(
                f'The text encoder embeds into {text_dims} dims but the head '
                f"expects channels={decode_head['channels']}: both encoders "
                'must come from the same CLIP model')
        super()._init_decode_head(decode_head)

    def init_weights(self) -> None:
        """Initialise the encoders (load CLIP) and the head, then set the
        head's DLFA projections to CLIP's output projection. The copy runs
        on the first call only, so it never overwrites trained weights."""
        first = not self.is_init
        super().init_weights()
        if first:
            self.decode_head.dlfa.init_from_clip(
                *self.image_encoder.output_projection())

    def set_test_vocabulary(self,
                            class_names: Sequence[str],
                            seen_classes: Optional[Sequence[str]] = None
                            ) -> None:
        """Predict over ``class_names`` instead of the dataset's classes
        (open-vocabulary inference); the training vocabulary is unchanged.

        The text encoder re-encodes the names at the next prediction. The
        head's ``seen_bias`` calibration applies to ``seen_classes``: by
        default the names of this model's seen classes that are in the new
        vocabulary, so ``set_test_vocabulary(self.class_names)`` restores the
        dataset's test vocabulary exactly, and a vocabulary sharing no name
        with the seen classes is not calibrated at all.

        Args:
            class_names (Sequence[str]): The K class names, unique and
                non-empty; prediction ``k`` means ``class_names[k]``.
            seen_classes (Sequence[str], optional): The names of
                ``class_names`` to calibrate as seen. Default: the overlap
                with :attr:`seen_classes`.
        """
        class_names = check_class_names(class_names, 'class_names')
        if seen_classes is None:
            seen = set(self.seen_classes)
        else:
            seen = set(seen_classes)
            unknown = sorted(seen - set(class_names))
            if unknown:
                raise ValueError(
                    f'seen_classes holds {unknown}, which are not in the '
                    f'test vocabulary {list(class_names)}')
        self.test_classes = class_names
        self.out_channels = len(class_names)
        self.decode_head.set_seen_mask(
            torch.tensor([name in seen for name in class_names]))

    def _use_vocabulary(self, names: Tuple[str, ...]) -> None:
        """Point the text encoder at ``names`` unless it already is."""
        if tuple(self.text_encoder.vocabulary) != names:
            self.text_encoder.set_vocabulary(names)

    def _text_embeddings(self, names: Tuple[str, ...]) -> Tensor:
        """(K, N, C) prompt embeddings of the vocabulary ``names``."""
        self._use_vocabulary(names)
        return self.text_encoder()

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses on a batch, with the training vocabulary: the head's
        forward, the targets (:meth:`training_targets`, reading its scores
        for pseudo-labels), then the head's losses.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` in the
                dataset's class indices.

        Returns:
            dict[str, Tensor]: ``decode.loss_*`` and ``decode.acc_seg``.
        """
        text = self._text_embeddings(self.train_classes)
        feats = self.extract_feat(inputs)
        seg_logits = self.decode_head([inputs, feats, text])
        targets = self.training_targets(data_samples, seg_logits)
        losses = self.decode_head.loss_by_feat(seg_logits, targets)
        return add_prefix(losses, 'decode')

    def training_targets(self, data_samples: SampleList,
                         seg_logits: Dict[str, Tensor]) -> SampleList:
        """The final targets of a batch (``zero_shot_targets``): labels
        mapped to training columns; in the transductive setting, unseen (or
        ``unlabeled_index``) pixels get the argmax of the head's detached
        inference probabilities over the unseen columns, else are ignored.

        Args:
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` (1, H, W)
                in the dataset's class indices.
            seg_logits (dict[str, Tensor]): The head's forward output,
                (B, K, h, w) each, for the training vocabulary.

        Returns:
            list[SegDataSample]: New samples (same metainfo) whose
            ``gt_sem_seg`` holds (1, H, W) int64 columns or ``ignore_index``.
        """
        head = self.decode_head
        gt = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1)
        labels = map_labels(gt, self.label_map, ignore_index=head.ignore_index,
                            unlabeled_index=self.unlabeled_index)
        prob = None
        if self.pseudo_label_columns is not None:
            with torch.no_grad():
                prob = head.probabilities(
                    head.upsample(seg_logits, labels.shape[-2:]))
        labels = assign_pseudo_labels(labels, prob, self.pseudo_label_columns,
                                      head.ignore_index)
        return [
            SegDataSample(gt_sem_seg=PixelData(data=label[None]),
                          metainfo=sample.metainfo)
            for label, sample in zip(labels, data_samples)
        ]

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Calibrated (B, K_all, H, W) scores with the test vocabulary.

        Any H×W: the image encoder pads the input at the bottom and right to
        whole patches; the scores are upsampled to that padded size and
        cropped back to H×W, so every pixel keeps the score of its own patch
        (resizing the patch grid straight to H×W would shift it by up to a
        patch).
        """
        text = self._text_embeddings(self.test_classes)
        feats = self.extract_feat(inputs)
        height, width = inputs.shape[2:]
        padded = torch.Size(self.image_encoder.padded_size((height, width)))
        metas = [dict(meta, img_shape=padded) for meta in batch_img_metas]
        scores = self.decode_head.predict([inputs, feats, text], metas,
                                          self.test_cfg)
        return scores[:, :, :height, :width]

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """mmseg's sliding-window inference with less memory traffic.

        The same windows and the same average as mmseg's, but each window's
        (B, K_all, h, w) scores are added into their slice of the output,
        where mmseg first pads them to a whole (B, K_all, H, W) map per
        window; and no host synchronisation re-checks that every pixel is
        covered (it is by construction).

        Returns:
            Tensor: (B, K_all, H, W) scores averaged over the windows.
        """
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        batch_size, _, h_img, w_img = inputs.size()
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds = inputs.new_zeros((batch_size, self.out_channels, h_img, w_img))
        count = inputs.new_zeros((1, 1, h_img, w_img))
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                preds[:, :, y1:y2, x1:x2] += self.encode_decode(
                    inputs[:, :, y1:y2, x1:x2], batch_img_metas)
                count[:, :, y1:y2, x1:x2] += 1
        return preds.div_(count)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Dict[str, Tensor]:
        """``mode='tensor'``: the head's raw outputs for the test vocabulary.

        Returns:
            dict[str, Tensor]: :meth:`ZegOTHead.forward`'s dict of
            (B, K_all, h, w) logits.
        """
        text = self._text_embeddings(self.test_classes)
        feats = self.extract_feat(inputs)
        return self.decode_head.forward([inputs, feats, text])
