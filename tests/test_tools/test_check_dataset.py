# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The dataset checker (:mod:`mmseg_zegot.datasets.checker`, the logic of
tools/check_dataset.py) on tiny datasets in the real folder layouts: good
ones pass with the right class counts, each kind of damage fails with a
message naming the file and the fix. The last test runs the tool itself."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_layout_dataset, make_voc_dataset, run_tool
from mmengine.registry import init_default_scope
from mmseg.datasets import COCOStuffDataset, PascalContextDataset59
from PIL import Image

from mmseg_zegot.datasets import get_split
from mmseg_zegot.datasets.checker import check_datasets
from mmseg_zegot.datasets.checker.files import sample_indices
from mmseg_zegot.utils import load_config

VOC_CLASSES = get_split('voc').classes
VOC_UNSEEN = list(get_split('voc').unseen)


@pytest.fixture
def check(capsys):
    """Check a config's datasets in-process; (exit code, stdout).

    Args of the returned function: the config path, then
    ``split='all'`` and ``max_images=200`` as the tool's ``--split`` and
    ``--max-images``.
    """

    def run(config, split='all', max_images=200):
        init_default_scope('mmseg')
        code = check_datasets(load_config(str(config)), split, max_images)
        return code, capsys.readouterr().out

    return run


def voc_dataset(root, split, seg='SegmentationClass', ann=None, **kwargs):
    return dict(
        type='ZegOTPascalVOC20Dataset',
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages', seg_map_path=seg),
        ann_file=ann or f'ImageSets/Segmentation/{split}.txt',
        pipeline=[],
        **kwargs)


def write_config(path, train=None, val=None, **extra) -> Path:
    """A config file with the given datasets (test_dataloader is val's)."""
    lines = ["custom_imports = dict(imports=['mmseg_zegot'], "
             'allow_failed_imports=False)']
    if train is not None:
        lines.append(f'train_dataloader = dict(dataset={train!r})')
    if val is not None:
        lines.append(f'val_dataloader = dict(dataset={val!r})')
        lines.append('test_dataloader = val_dataloader')
    lines += [f'{key} = {value!r}' for key, value in extra.items()]
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.fixture
def voc(tmp_path):
    """A VOC root (train 2007_000000..05, val 2007_000006..08) and a config
    with its train and val datasets."""
    root = Path(make_voc_dataset(tmp_path / 'voc', num_train=6, num_val=3))
    config = write_config(
        tmp_path / 'voc_cfg.py',
        train=voc_dataset(root, 'train'),
        val=voc_dataset(root, 'val'),
        model=dict(zero_shot_split='voc'),
        val_evaluator=dict(type='ZeroShotIoUMetric'))
    return root, config


def images_per_class(label_files, num_classes, offset):
    """Independent reference: how many label files hold each class, read
    with PIL (class k stored as k + offset; other values ignored)."""
    counts = np.zeros(num_classes, int)
    for path in label_files:
        values = np.unique(np.array(Image.open(path))).astype(int) - offset
        counts[values[(values >= 0) & (values < num_classes)]] += 1
    return counts


def listed_labels(root, lists, labels, split, suffix='.png'):
    names = (root / lists / f'{split}.txt').read_text().split()
    return [root / labels / f'{name}{suffix}' for name in names]


def class_table(out):
    """{class: (split, [sampled files per checked split])} from the
    printed class table."""
    rows = re.findall(
        r'^\|\s*\d+\s*\|\s*([^|]*?)\s*\|\s*(\S+)\s*\|(.*)\|$', out, re.M)
    return {
        name: (split, [int(v) for v in counts.split('|')])
        for name, split, counts in rows
    }


def test_good_voc_dataset_passes_with_class_counts(voc, check):
    root, config = voc
    code, out = check(config)
    assert code == 0, out
    assert 'OK: the dataset matches the config.' in out
    assert re.search(r'\| train \| train_dataloader.dataset \| '
                     r'ZegOTPascalVOC20Dataset \|\s+6\s+\|\s+0\s+\|\s+0\s+\|'
                     r'\s+6\s+\|\s+0\s+\|', out), out
    assert 'test_dataloader.dataset is val_dataloader.dataset' in out
    table = class_table(out)
    assert list(table) == list(VOC_CLASSES)
    train = images_per_class(
        listed_labels(root, 'ImageSets/Segmentation', 'SegmentationClass',
                      'train'), 20, 1)
    val = images_per_class(
        listed_labels(root, 'ImageSets/Segmentation', 'SegmentationClass',
                      'val'), 20, 1)
    assert train.sum() > 0 and val.sum() > 0
    for index, name in enumerate(VOC_CLASSES):
        split = 'unseen' if name in VOC_UNSEEN else 'seen'
        assert table[name] == (split, [train[index], val[index]]), name
    # Seen classes absent from training and unseen absent from val: warnings.
    absent_seen = [c for i, c in enumerate(VOC_CLASSES)
                   if c not in VOC_UNSEEN and train[i] == 0]
    absent_unseen = [c for i, c in enumerate(VOC_CLASSES)
                     if c in VOC_UNSEEN and val[i] == 0]
    assert absent_seen and absent_unseen
    assert (f'{len(absent_seen)} of 15 seen classes appear in none of the 6 '
            f'train label files read: {absent_seen}.') in out
    assert (f'{len(absent_unseen)} of 5 unseen classes appear in none of the '
            f'3 val label files read: {absent_unseen}.') in out


def put_value(path, value):
    label = np.array(Image.open(path))
    label[5, 5] = value
    Image.fromarray(label).save(path)


DAMAGE = {
    'missing image': (
        lambda root: os.remove(root / 'JPEGImages/2007_000002.jpg'),
        ['train_dataloader.dataset: images listed by the dataset are '
         'missing, 1 of 6:', 'JPEGImages/2007_000002.jpg',
         'extract VOCtrainval_11-May-2012.tar']),
    'missing label': (
        lambda root: os.remove(root / 'SegmentationClass/2007_000007.png'),
        ['val_dataloader.dataset: label files are missing, 1 of 3:',
         'SegmentationClass/2007_000007.png']),
    'label value 21': (
        lambda root: put_value(root / 'SegmentationClass/2007_000001.png', 21),
        ['train_dataloader.dataset: label files hold values outside [0, 20) '
         'and the ignore index 255, as LoadAnnotations reads them '
         '(reduce_zero_label=True; 20 classes), 1 of 6:',
         'SegmentationClass/2007_000001.png: values [20] (stored as [21] in '
         'the file)', 'VOC labels hold 0 (background), 1..20 and 255']),
    'RGB label': (
        lambda root: Image.open(root / 'SegmentationClass/2007_000004.png')
        .convert('RGB').save(root / 'SegmentationClass/2007_000004.png'),
        ['train_dataloader.dataset: label files are not single-channel 8-bit '
         'class maps, 1 of 6:',
         'SegmentationClass/2007_000004.png: 3 channels (mode RGB)',
         'single-channel 8-bit PNGs of class indices']),
    'missing ann_file': (
        lambda root: os.remove(root / 'ImageSets/Segmentation/val.txt'),
        ['val_dataloader.dataset.ann_file: the image list',
         'ImageSets/Segmentation/val.txt does not exist',
         'or set val_dataloader.dataset.ann_file']),
    'size mismatch': (
        lambda root: Image.open(root / 'SegmentationClass/2007_000006.png')
        .resize((24, 20), Image.NEAREST).save(
            root / 'SegmentationClass/2007_000006.png'),
        ['val_dataloader.dataset: label files differ in size from their '
         'image, 1 of 3:', 'SegmentationClass/2007_000006.png: label 20x24, '
         'image 40x48', 'JPEGImages/2007_000006.jpg']),
    'missing label folder': (
        lambda root: os.rename(root / 'SegmentationClass', root / 'moved'),
        ['train_dataloader.dataset.data_prefix.seg_map_path: the label '
         'folder', 'SegmentationClass does not exist']),
}


@pytest.mark.parametrize('damage', list(DAMAGE))
def test_damaged_voc_dataset_fails_naming_file_and_fix(voc, check, damage):
    root, config = voc
    apply, fragments = DAMAGE[damage]
    apply(root)
    code, out = check(config)
    assert code == 1, out
    assert 'FAILED' in out
    errors = out[out.index('Errors ('):]
    for fragment in fragments:
        assert fragment in errors, (fragment, errors)


def test_missing_data_root_names_the_key_to_set(tmp_path, check):
    config = write_config(
        tmp_path / 'cfg.py', train=voc_dataset(tmp_path / 'nowhere', 'train'))
    code, out = check(config)
    assert code == 1
    assert 'train_dataloader.dataset.data_root: the folder' in out
    assert 'nowhere' in out and 'VOCdevkit/VOC2012 folder' in out
    assert ('--cfg-options train_dataloader.dataset.data_root=/path/to/it'
            in out)


def test_only_the_sample_is_read(voc, check):
    """Evenly spread sample: with 2 of 6 files, 2007_000000 and _000005."""
    root, config = voc
    put_value(root / 'SegmentationClass/2007_000001.png', 21)
    code, out = check(config, 'train', max_images=2)
    assert code == 0, out
    assert re.search(r'\|\s+6\s+\|\s+0\s+\|\s+0\s+\|\s+2\s+\|\s+0\s+\|', out)
    put_value(root / 'SegmentationClass/2007_000005.png', 21)
    code, out = check(config, 'train', max_images=2)
    assert code == 1 and '2007_000005.png: values [20]' in out


def test_sample_indices():
    assert sample_indices(10, 4) == [0, 3, 6, 9]
    assert sample_indices(3, 200) == [0, 1, 2]
    assert sample_indices(7, 1) == [0]
    assert sample_indices(5, 0) == [] and sample_indices(0, 5) == []
    picked = sample_indices(1464, 200)
    assert len(set(picked)) == 200 and picked[-1] == 1463


@pytest.mark.parametrize('extra,fragments', [
    (dict(model=dict(zero_shot_split='context59')),
     ['model.zero_shot_split and train_dataloader.dataset disagree on the '
      "classes (59 vs 20 classes; only in model.zero_shot_split: ['bag'",
      "use the dataset's split ('voc') there too"]),
    (dict(model=dict(class_names=list(VOC_CLASSES),
                     seen_classes=list(VOC_CLASSES[:-1]))),
     ["model.class_names / model.seen_classes has unseen classes "
      "['tvmonitor'], train_dataloader.dataset has " + str(VOC_UNSEEN)]),
    (dict(model=dict(decode_head=dict(num_classes=21))),
     ['model.decode_head.num_classes is 21, the dataset '
      '(train_dataloader.dataset) has 20 classes']),
    (dict(val_evaluator=dict(type='ZeroShotIoUMetric',
                             unseen_classes=['sofa'])),
     ["val_evaluator.unseen_classes has unseen classes ['sofa']"]),
])
def test_config_split_that_disagrees_with_the_dataset_fails(
        voc, check, tmp_path, extra, fragments):
    root, _ = voc
    config = write_config(
        tmp_path / 'cfg.py',
        train=voc_dataset(root, 'train'),
        val=voc_dataset(root, 'val'),
        **extra)
    code, out = check(config)
    assert code == 1, out
    for fragment in fragments:
        assert fragment in out, (fragment, out[-2000:])


def test_datasets_and_transform_with_other_splits_fail(voc, check, tmp_path):
    root, _ = voc
    transform = dict(type='ZegOTZeroShotLabels', classes=list(VOC_CLASSES),
                     unseen_classes=['cat'])
    train = voc_dataset(root, 'train')
    train['pipeline'] = [transform]
    config = write_config(
        tmp_path / 'cfg.py',
        train=train,
        val=voc_dataset(root, 'val', zero_shot_split='context59'))
    code, out = check(config)
    assert code == 1
    assert ("train_dataloader.dataset.pipeline ZegOTZeroShotLabels has unseen "
            "classes ['cat'], train_dataloader.dataset has "
            f'{VOC_UNSEEN}') in out
    assert ('val_dataloader.dataset: building ZegOTPascalVOC20Dataset '
            "failed: ValueError: `zero_shot_split` 'context59' does not "
            'match') in out


def test_zero_shot_metric_needs_a_split(voc, check, tmp_path):
    root, _ = voc
    plain = voc_dataset(root, 'val')
    plain.update(type='PascalVOCDataset', reduce_zero_label=False)
    config = write_config(tmp_path / 'cfg.py', val=plain,
                          val_evaluator=dict(type='ZeroShotIoUMetric'))
    code, out = check(config, 'val')
    assert code == 1
    assert ('val_evaluator is ZeroShotIoUMetric, but val_dataloader.dataset '
            'has no zero-shot split in its metainfo') in out
    # Without the metric, a plain mmseg dataset (21 classes, 0..20) passes.
    config = write_config(tmp_path / 'cfg.py', val=plain)
    code, out = check(config, 'val')
    assert code == 0, out
    assert 'Classes (21, no zero-shot split)' in out


def test_voc_aug_concat_in_repeat(voc, check, tmp_path):
    """Wrappers are looked through; each inner dataset is its own row, and
    a missing SBD list points at mmseg's voc_aug.py converter."""
    root, _ = voc
    train = dict(
        type='RepeatDataset',
        times=2,
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                voc_dataset(root, 'train'),
                voc_dataset(root, 'aug', seg='SegmentationClassAug')
            ]))
    config = write_config(tmp_path / 'cfg.py', train=train,
                          val=voc_dataset(root, 'val'))
    code, out = check(config, 'train')
    assert code == 0, out
    for index in (0, 1):
        assert re.search(
            rf'\| train \|\s*train_dataloader.dataset.dataset.datasets.{index}'
            r'\s*\| ZegOTPascalVOC20Dataset \|\s+6\s+\|', out), out
    aug_names = (root / 'ImageSets/Segmentation/aug.txt').read_text().split()
    expected = images_per_class(
        listed_labels(root, 'ImageSets/Segmentation', 'SegmentationClass',
                      'train') +
        [root / 'SegmentationClassAug' / f'{n}.png' for n in aug_names], 20, 1)
    table = class_table(out)
    assert [table[c][1] for c in VOC_CLASSES] == [[n] for n in expected]

    os.remove(root / 'ImageSets/Segmentation/aug.txt')
    code, out = check(config, 'train')
    assert code == 1
    assert ('train_dataloader.dataset.dataset.datasets.1.ann_file: the image '
            'list') in out
    assert ('mmseg/.mim/tools/dataset_converters/voc_aug.py data/VOCdevkit '
            'data/VOCdevkit/VOCaug') in out


def context_dataset(root, split):
    return dict(
        type='ZegOTPascalContext59Dataset',
        data_root=str(root),
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file=f'ImageSets/SegmentationContext/{split}.txt',
        pipeline=[])


def test_context59_layout(tmp_path, check):
    root = Path(make_layout_dataset(tmp_path / 'ctx', 'context59',
                                    num_train=4, num_val=2))
    config = write_config(
        tmp_path / 'cfg.py',
        train=context_dataset(root, 'train'),
        val=context_dataset(root, 'val'),
        model=dict(zero_shot_split='context59'))
    code, out = check(config)
    assert code == 0, out
    table = class_table(out)
    classes = PascalContextDataset59.METAINFO['classes']
    assert list(table) == list(classes)
    train = images_per_class(
        listed_labels(root, 'ImageSets/SegmentationContext',
                      'SegmentationClassContext', 'train'), 59, 1)
    assert [table[c][1][0] for c in classes] == train.tolist()
    assert 'split \'context59\': 49 seen, 10 unseen' in out

    os.rename(root / 'SegmentationClassContext', root / 'moved')
    code, out = check(config)
    assert code == 1
    assert 'SegmentationClassContext does not exist' in out
    assert ('dataset_converters/pascal_context.py data/VOCdevkit '
            'data/VOCdevkit/VOC2010/trainval_merged.json') in out


def coco_dataset(root, split):
    return dict(
        type='ZegOTCOCOStuffDataset',
        data_root=str(root),
        data_prefix=dict(
            img_path=f'images/{split}2017',
            seg_map_path=f'annotations/{split}2017'),
        pipeline=[])


def test_coco_stuff_layout(tmp_path, check):
    root = Path(make_layout_dataset(tmp_path / 'coco', 'coco_stuff',
                                    num_train=4, num_val=2))
    config = write_config(
        tmp_path / 'cfg.py',
        train=coco_dataset(root, 'train'),
        val=coco_dataset(root, 'val'),
        model=dict(zero_shot_split='coco-stuff'))
    code, out = check(config)
    assert code == 0, out
    table = class_table(out)
    classes = COCOStuffDataset.METAINFO['classes']
    assert list(table) == list(classes)
    val = images_per_class(
        sorted((root / 'annotations/val2017').glob('*_labelTrainIds.png')),
        171, 0)
    assert [table[c][1][1] for c in classes] == val.tolist()

    # A raw stuffthingmaps value (182 classes, 0..181) is not a train ID.
    label = next((root / 'annotations/val2017').glob('*.png'))
    put_value(label, 181)
    code, out = check(config)
    assert code == 1
    assert f'{label.name}: values [181]' in out
    assert 'dataset_converters/coco_stuff164k.py' in out


def test_cli_on_the_voc_config_with_cfg_options(tmp_path):
    """The real VOC config, pointed at a tiny VOC copy from the command line
    (both ConcatDataset members, val and test)."""
    root = make_voc_dataset(tmp_path / 'voc', num_train=3, num_val=2)
    keys = ('train_dataloader.dataset.datasets.0',
            'train_dataloader.dataset.datasets.1', 'val_dataloader.dataset',
            'test_dataloader.dataset')
    out = run_tool('check_dataset.py', 'configs/zegot/zegot_vitb16_voc.py',
                   '--cfg-options', *[f'{k}.data_root={root}' for k in keys])
    assert 'OK: the dataset matches the config.' in out
    assert "Classes (20, split 'voc': 15 seen, 5 unseen)" in out
    for key in keys[:3]:
        assert re.search(
            rf'\|\s*{re.escape(key)}\s*\| ZegOTPascalVOC20Dataset', out), out


def test_leaf_datasets_of_configs_and_built_wrappers():
    """One walk for dataset configs (the checker) and built datasets (the
    start-up check), with the config key of each leaf."""
    from torch.utils.data import ConcatDataset, Subset, TensorDataset

    from mmseg_zegot.datasets.checker import leaf_datasets
    cfg = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset', datasets=[dict(type='A'), dict(type='B')]))
    assert [(key, leaf['type']) for key, leaf in leaf_datasets(cfg, 'd')] == [
        ('d.dataset.datasets.0', 'A'), ('d.dataset.datasets.1', 'B')]
    a, b = TensorDataset(torch.zeros(2)), TensorDataset(torch.ones(3))
    built = Subset(ConcatDataset([a, b]), [0, 4])
    assert list(leaf_datasets(built, 'd')) == [
        ('d.dataset.datasets.0', a), ('d.dataset.datasets.1', b)]
    assert list(leaf_datasets(a, 'd')) == [('d', a)]
