# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Run a checkpoint over a test set and count where its zero-shot errors
come from (the logic of ``tools/analysis/zero_shot_errors.py``; the counts
are :mod:`mmseg_zegot.evaluation.zero_shot_errors`)."""
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from mmseg_zegot.utils import load_segmentor_checkpoint

from .zero_shot_errors import (
    accumulate,
    accumulate_alignment,
    alignment_report,
    new_alignment_counts,
    new_counts,
    summarize,
)


def analyse_errors(cfg, checkpoint: str) -> dict:
    """The error report of a ZegOT checkpoint on a config's test set.

    The model is built from ``cfg`` and loaded from ``checkpoint``
    (training or published), and runs ``test_step`` over
    ``cfg.test_dataloader`` as ``tools/test.py`` does (its calibration and
    inference mode). The scores are counted by :func:`.accumulate`; a head
    with a learned text alignment (``decode_head.text_align``, ZegOT's
    ``W_ga``) is observed through a forward hook
    (:func:`.accumulate_alignment`).

    Args:
        cfg (Config): A ``ZegOTSegmentor`` config.
        checkpoint (str): The checkpoint file.

    Returns:
        dict: :func:`.summarize`'s report, with ``alignment``
        (:func:`.alignment_report`, for a head with a text alignment on a
        split with seen and unseen classes), ``classes`` and
        ``unseen_classes``.

    Raises:
        ValueError: If the model has no seen / unseen classes.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'seen_classes'):
        raise ValueError(
            f'{type(model).__name__} has no seen/unseen classes: this tool '
            'analyses ZegOTSegmentor configs (model.type=ZegOTSegmentor).')
    load_segmentor_checkpoint(model, checkpoint)
    model.eval()
    names = tuple(model.test_classes)
    seen_mask = torch.tensor([name in model.seen_classes for name in names])
    counts = new_counts(len(names))
    alignment, text = new_alignment_counts(len(names)), []

    def record_alignment(module, args, output):
        # args[0] is [g * t ; t], (B, K, N, 2C); output W_ga of it, (B, K,
        # N, C). Per class: the mean over the N prompts of unit vectors.
        channels = output.size(-1)
        text[:] = [F.normalize(args[0][0, ..., channels:], dim=-1).mean(1)]
        accumulate_alignment(alignment,
                             F.normalize(output, dim=-1).mean(2), seen_mask)

    align = getattr(model.decode_head, 'text_align', None)
    hook = None
    if align is not None and seen_mask.any() and not seen_mask.all():
        hook = align.register_forward_hook(record_alignment)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    with torch.no_grad():
        for data in loader:
            for sample in model.test_step(data):
                accumulate(counts, sample.seg_logits.data,
                           sample.gt_sem_seg.data[0], seen_mask,
                           loader.dataset.ignore_index)
    report = summarize(counts, names, seen_mask)
    if hook is not None:
        hook.remove()
        report['alignment'] = alignment_report(alignment, text[0], names,
                                               seen_mask)
    report['classes'] = list(names)
    report['unseen_classes'] = [n for n, s in zip(names, seen_mask) if not s]
    return report
