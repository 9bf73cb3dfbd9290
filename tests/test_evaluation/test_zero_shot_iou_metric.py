# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZeroShotIoUMetric against hand-computed seen / unseen / harmonic IoUs."""
import json
import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.hooks import CheckpointHook
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image

from mmseg_zegot.evaluation.metrics import ZeroShotIoUMetric, zero_shot_iou_metric
from mmseg_zegot.evaluation.metrics.zero_shot_iou_metric import harmonic_iou

CLASSES = ('cat', 'dog', 'car', 'sky', 'tree')
META = dict(
    classes=CLASSES,
    seen_classes=('cat', 'dog', 'sky'),
    unseen_classes=('car', 'tree'),
    zero_shot_split='toy')

# Two 2×4 images (255: ignored). 'sky' (seen) is neither in the ground truth
# nor predicted on a counted pixel: IoU 0/0 = NaN, left out of the means.
# 'tree' (unseen) is absent from the ground truth but predicted once: IoU 0.
GTS = ([[0, 0, 0, 0], [1, 1, 2, 2]],
       [[2, 2, 0, 255], [1, 1, 1, 1]])
PREDS = ([[0, 0, 0, 1], [1, 1, 2, 4]],
         [[2, 0, 0, 3], [1, 1, 0, 1]])
# Per class (intersection / union): cat 4/7, dog 5/7, car 2/4, sky NaN,
# tree 0/1; 11 of 15 counted pixels right; accuracy (intersection / label
# area): cat 4/5, dog 5/6, car 2/4, sky and tree 0/0.
SEEN = (4 / 7 + 5 / 7) / 2  # 9/14
UNSEEN = (2 / 4 + 0) / 2  # 1/4
EXPECTED = {
    'aAcc': 100 * 11 / 15,
    'mIoU': 100 * (4 / 7 + 5 / 7 + 1 / 2 + 0) / 4,
    'mAcc': 100 * (4 / 5 + 5 / 6 + 2 / 4) / 3,
    'mIoU.seen': 100 * SEEN,
    'mIoU.unseen': 100 * UNSEEN,
    'hIoU': 100 * 2 * SEEN * UNSEEN / (SEEN + UNSEEN),  # 9/25
}


def data_sample(pred, gt, **extra):
    """A data sample as SegDataSample.to_dict() gives it to the metric."""
    return dict(
        pred_sem_seg=dict(data=torch.tensor([pred])),
        gt_sem_seg=dict(data=torch.tensor([gt])),
        img_path='data/img_0.jpg',
        **extra)


def evaluate(metric, preds=PREDS, gts=GTS, meta=META):
    metric.dataset_meta = meta
    for pred, gt in zip(preds, gts):
        metric.process({}, [data_sample(pred, gt)])
    return metric.compute_metrics(metric.results)


def test_hand_computed_values_as_python_floats():
    metrics = evaluate(ZeroShotIoUMetric())
    assert list(metrics) == list(EXPECTED)
    for key, value in EXPECTED.items():
        assert type(metrics[key]) is float, key
        assert metrics[key] == pytest.approx(value, abs=0.005), key
    assert metrics['hIoU'] == 36.0


def test_overall_numbers_equal_mmseg_iou_metric():
    ours = evaluate(ZeroShotIoUMetric(iou_metrics=['mIoU', 'mDice']))
    stock = evaluate(IoUMetric(iou_metrics=['mIoU', 'mDice']))
    # mmseg rounds float32 means (44.64 is 44.63999938964844 there).
    assert {k: ours[k] for k in stock} == {
        k: pytest.approx(float(v), abs=1e-5) for k, v in stock.items()}
    assert ours['mIoU'] == 44.64


def test_all_unseen_ious_zero_give_hiou_zero():
    everything_cat = [[[0] * 4] * 2] * 2
    metrics = evaluate(ZeroShotIoUMetric(), preds=everything_cat)
    # cat: 5 right of 15 predicted -> 1/3; dog 0; sky, tree NaN; car 0.
    assert metrics['mIoU.seen'] == pytest.approx(100 / 6, abs=0.005)
    assert metrics['mIoU.unseen'] == 0.0
    assert metrics['hIoU'] == 0.0
    everything_sky = [[[3] * 4] * 2] * 2
    metrics = evaluate(ZeroShotIoUMetric(), preds=everything_sky)
    assert metrics['mIoU.seen'] == metrics['mIoU.unseen'] == 0.0
    assert metrics['hIoU'] == 0.0


def test_harmonic_iou():
    assert harmonic_iou(0.5, 0.25) == pytest.approx(1 / 3)
    assert harmonic_iou(0.0, 0.0) == 0.0
    assert harmonic_iou(0.7, 0.0) == 0.0
    assert math.isnan(harmonic_iou(0.7, math.nan))


def test_fully_supervised_split_has_no_unseen_mean():
    meta = dict(META, seen_classes=CLASSES, unseen_classes=())
    metrics = evaluate(ZeroShotIoUMetric(), meta=meta)
    assert metrics['mIoU.seen'] == metrics['mIoU']
    assert math.isnan(metrics['mIoU.unseen']) and math.isnan(metrics['hIoU'])


def test_explicit_unseen_classes_override_dataset_meta():
    metrics = evaluate(ZeroShotIoUMetric(unseen_classes=['dog']))
    seen = (4 / 7 + 1 / 2 + 0) / 3
    assert metrics['mIoU.seen'] == pytest.approx(100 * seen, abs=0.005)
    assert metrics['mIoU.unseen'] == pytest.approx(100 * 5 / 7, abs=0.005)


def test_missing_or_inconsistent_split_fails_when_meta_is_set():
    metric = ZeroShotIoUMetric()
    with pytest.raises(ValueError, match='zero_shot_split'):
        metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match='not the complement'):
        metric.dataset_meta = dict(META, seen_classes=('cat', ))
    with pytest.raises(ValueError, match=r"`unseen_classes` \['bus'\]"):
        ZeroShotIoUMetric(unseen_classes=['bus']).dataset_meta = META
    with pytest.raises(ValueError, match="must include 'mIoU'"):
        ZeroShotIoUMetric(iou_metrics=['mDice'])


def test_per_class_table_marks_seen_and_unseen(monkeypatch):
    logged = []
    monkeypatch.setattr(zero_shot_iou_metric, 'print_log',
                        lambda msg, logger=None: logged.append(msg))
    evaluate(ZeroShotIoUMetric())
    table = next(msg for msg in logged if 'Class' in msg)
    lines = table.strip().splitlines()
    header, *rows = ([cell.strip() for cell in line.split('|')[1:-1]]
                     for line in lines[1:2] + lines[3:-1])
    assert header == ['Class', 'Split', 'IoU', 'Acc']
    assert rows == [['cat', 'seen', '57.14', '80.0'],
                    ['dog', 'seen', '71.43', '83.33'],
                    ['car', 'unseen', '50.0', '50.0'],
                    ['sky', 'seen', 'nan', 'nan'],
                    ['tree', 'unseen', '0.0', 'nan']]
    assert any("zero-shot split 'toy'" in msg and 'hIoU 36.0' in msg
               for msg in logged)


def test_test_tool_out_and_format_only(tmp_path):
    # tools/test.py --out sets output_dir and keep_results on the evaluator.
    metric = METRICS.build(
        dict(type='ZeroShotIoUMetric', output_dir=str(tmp_path / 'out'),
             keep_results=True))
    metric.dataset_meta = META
    metric.process({}, [data_sample(PREDS[0], GTS[0], reduce_zero_label=True)])
    saved = np.array(Image.open(tmp_path / 'out' / 'img_0.png'))
    np.testing.assert_array_equal(saved, np.array(PREDS[0]) + 1)
    assert metric.compute_metrics(metric.results)['hIoU'] >= 0.0

    # format_only: no labels, no split needed, no metrics.
    metric = ZeroShotIoUMetric(format_only=True,
                               output_dir=str(tmp_path / 'fmt'))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.tensor([PREDS[1]])),
                             img_path='a/b.jpg')])
    assert metric.results == []
    assert (tmp_path / 'fmt' / 'b.png').is_file()
    assert metric.compute_metrics(metric.results) == {}


def test_evaluate_and_checkpoint_hook_save_best_key():
    metric = ZeroShotIoUMetric()
    metric.dataset_meta = META
    for pred, gt in zip(PREDS, GTS):
        metric.process({}, [data_sample(pred, gt)])
    metrics = metric.evaluate(size=len(GTS))
    assert metrics['hIoU'] == 36.0
    hook = CheckpointHook(interval=1, save_best='hIoU', rule='greater')
    assert hook.key_indicators == ['hIoU']
    assert hook.is_better_than['hIoU'](metrics['hIoU'], 35.99)
    with pytest.raises(ValueError, match='Cannot infer the rule'):
        CheckpointHook(interval=1, save_best='hIoU')


def _evaluate_on_rank(rank, init_file, out_dir):
    import mmseg_zegot  # noqa: F401  (registers the metric in the child)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=2)
    metric = METRICS.build(dict(type='ZeroShotIoUMetric'))
    metric.dataset_meta = META
    metric.process({}, [data_sample(PREDS[rank], GTS[rank])])
    metrics = metric.evaluate(size=2)
    (out_dir / f'rank{rank}.json').write_text(json.dumps(metrics))
    dist.destroy_process_group()


def test_distributed_evaluation_gathers_all_ranks(tmp_path):
    """Each of two gloo ranks sees one image; every rank gets the metrics of
    both, through IoUMetric's result collection."""
    mp.spawn(_evaluate_on_rank, args=(tmp_path / 'init', tmp_path),
             nprocs=2, join=True)
    for rank in range(2):
        metrics = json.loads((tmp_path / f'rank{rank}.json').read_text())
        assert metrics['hIoU'] == 36.0
        assert metrics['mIoU.seen'] == pytest.approx(100 * SEEN, abs=0.005)


@pytest.mark.parametrize('value', [5, 50, 254])
def test_out_of_range_label_values_are_refused_naming_the_file(value):
    """Past the start-up check's first 8 files, a label value >= K was
    counted silently: every prediction on it a false positive."""
    metric = ZeroShotIoUMetric()
    metric.dataset_meta = META
    metric.process({}, [data_sample(PREDS[0], GTS[0],
                                    seg_map_path='data/ann/a.png')])
    gt = [[0, value, value, 255], [1, 1, 2, 2]]
    with pytest.raises(ValueError) as info:
        metric.process({}, [data_sample(PREDS[1], gt,
                                        seg_map_path='data/ann/b.png')])
    assert str(info.value) == (
        f'ZeroShotIoUMetric: the label map data/ann/b.png holds the values '
        f'[{value}], outside the class indices [0, 5) and the ignore index '
        '255: they would make every prediction on those pixels count as '
        'wrong (a lower mIoU, silently). Correct the label file '
        '(tools/check_dataset.py CONFIG names every such file), or check '
        "the dataset's `reduce_zero_label` and `metainfo.classes`.")
    assert len(metric.results) == 1


def test_metric_is_exported_where_the_readme_says():
    """The README lists ZeroShotIoUMetric under mmseg_zegot/evaluation/."""
    import mmseg_zegot.evaluation
    assert mmseg_zegot.evaluation.ZeroShotIoUMetric is ZeroShotIoUMetric
    assert 'ZeroShotIoUMetric' in mmseg_zegot.evaluation.__all__
