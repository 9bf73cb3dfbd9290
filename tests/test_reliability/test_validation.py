# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Configuration mistakes fail at build / start-up time with a message that
names the config key and the fix.

``CASES`` lists every check this file proves, one row per mistake with the
message fragment it must produce; ``COVERED_ELSEWHERE`` lists the mistakes
whose checks are proven by the tests of the component itself (the row names
that test, and :func:`test_case_is_covered_elsewhere` makes sure it still
exists). docs/reliability.md has the same two tables in prose.
"""
import ast
import copy
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from conftest import REPO, make_layout_dataset
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from mmseg_zegot.datasets import get_split
from mmseg_zegot.engine.hooks import ZegOTStartupCheckHook
from mmseg_zegot.engine.hooks.startup_check_hook import (
    check_dataset,
    check_label_files,
    check_metric,
)
from mmseg_zegot.evaluation.metrics import ZeroShotIoUMetric
from mmseg_zegot.models.utils import build_clip

VOC = get_split('voc')
LOADING = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
TRAIN = 'train_dataloader.dataset'


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


class Context:
    """What the cases build on: a tiny CLIP, a tiny VOC-layout dataset and
    small custom datasets, made on first use."""

    def __init__(self, clip_cfg: dict, tmp_path: Path) -> None:
        self.clip_cfg = clip_cfg
        self.tmp_path = tmp_path

    @cached_property
    def voc_root(self) -> str:
        return make_layout_dataset(self.tmp_path / 'voc', 'voc', num_train=2,
                                   num_val=1, size=(32, 32))

    def voc(self, pipeline=(), **kwargs):
        """The VOC-20 training set with LOADING + ``pipeline``."""
        cfg = dict(type='ZegOTPascalVOC20Dataset', data_root=self.voc_root,
                   data_prefix=dict(img_path='JPEGImages',
                                    seg_map_path='SegmentationClass'),
                   ann_file='ImageSets/Segmentation/train.txt',
                   pipeline=LOADING + list(pipeline))
        cfg.update(kwargs)
        return DATASETS.build(cfg)

    def custom(self, classes, labels, reduce_zero_label=False, **kwargs):
        """A ``ZegOTZeroShotDataset`` with one 8×8 image per label map of
        ``labels`` (name -> list of values), files ``<name>.png``."""
        root = self.tmp_path / 'custom'
        for name, values in labels.items():
            for folder in ('img', 'ann'):
                (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                root / 'img' / f'{name}.png')
            label = np.resize(np.asarray(values, np.uint8), (8, 8))
            Image.fromarray(label).save(root / 'ann' / f'{name}.png')
        return DATASETS.build(dict(
            type='ZegOTZeroShotDataset', data_root=str(root),
            data_prefix=dict(img_path='img', seg_map_path='ann'),
            img_suffix='.png', seg_map_suffix='.png',
            reduce_zero_label=reduce_zero_label, pipeline=LOADING,
            metainfo=dict(classes=classes, **kwargs)))

    def zegot_cfg(self, **kwargs) -> dict:
        """A tiny ZegOTSegmentor config on the VOC split; ``kwargs``
        update its top-level keys (dicts are merged one level deep)."""
        clip = dict(model_name='tiny', model_cfg=self.clip_cfg,
                    quick_gelu=False)
        cfg = dict(
            type='ZegOTSegmentor',
            zero_shot_split='voc',
            image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                               out_indices=(0, 1), **clip),
            text_encoder=dict(type='ZegOTPromptTextEncoder', num_prompts=2,
                              prompt_length=2, **clip),
            decode_head=dict(type='ZegOTHead', num_classes=None,
                             in_channels=None, channels=None, in_index=None,
                             decoder=dict(num_layers=1, num_heads=2)),
            data_preprocessor=dict(
                type='SegDataPreProcessor', mean=[0.0] * 3, std=[1.0] * 3,
                size=(32, 32)),
            test_cfg=dict(mode='whole'))
        for key, value in kwargs.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = dict(cfg[key], **value)
            else:
                cfg[key] = value
        return cfg

    def zegot(self, **kwargs):
        return MODELS.build(self.zegot_cfg(**kwargs))

    @cached_property
    def model(self):
        """The default tiny ZegOT model (inductive, VOC split)."""
        return self.zegot()

    def stock_fcn(self):
        """The stock mmseg FCN of the tools tests (num_classes=21)."""
        cfg = Config.fromfile(REPO / 'tests' / 'data' / 'configs' /
                              'tiny_fcn_voc.py')
        return MODELS.build(cfg.model)


@pytest.fixture
def ctx(tiny_clip_cfg, tmp_path) -> Context:
    return Context(tiny_clip_cfg, tmp_path)


def zero_shot_labels(**kwargs) -> dict:
    return dict(type='ZegOTZeroShotLabels', **kwargs)


def metric_with(meta, **kwargs) -> ZeroShotIoUMetric:
    metric = ZeroShotIoUMetric(**kwargs)
    metric.dataset_meta = meta
    return metric


@dataclass
class Case:
    """One mistake: ``make(ctx)`` must raise a ValueError matching
    ``match``."""
    what: str
    make: Callable[[Context], object]
    match: str


CASES = [
    # The split: dataset vs model vs metric vs ZegOTZeroShotLabels
    # (ZegOTStartupCheckHook).
    Case('dataset classes are not the model classes',
         lambda c: check_dataset(
             c.zegot(zero_shot_split=dict(classes=['cat', 'dog', 'car'],
                                          unseen_classes=['dog'])),
             TRAIN, c.voc(), training=True),
         r'`train_dataloader\.dataset` and the model disagree on the '
         r"classes \(20 vs 3 classes; only in the first: \['aeroplane'.*"
         r'`model\.zero_shot_split`'),
    Case('dataset classes in another order than the model',
         lambda c: check_dataset(
             c.model, TRAIN,
             c.custom(tuple(reversed(VOC.classes)), {'a': [0]}),
             training=True),
         r"same names in a different order \(first difference at index 0: "
         r"'tvmonitor' vs 'aeroplane'\)"),
    Case('dataset unseen classes are not the model unseen classes',
         lambda c: check_dataset(
             c.zegot(zero_shot_split=dict(name='voc',
                                          unseen_classes=['sofa'])),
             TRAIN, c.voc(), training=True),
         r"`train_dataloader\.dataset\.zero_shot_split` marks "
         r"\['pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'\] unseen "
         r"but the model .* treats \['sofa'\] as unseen"),
    Case('metric unseen classes are not the model unseen classes',
         lambda c: check_metric(
             c.model, 'val_evaluator',
             metric_with(c.voc().metainfo, unseen_classes=['sofa'])),
         r"`val_evaluator` \(ZeroShotIoUMetric\) reports \['sofa'\] as "
         r'unseen.*drop `val_evaluator\.unseen_classes`'),
    Case('ZegOTZeroShotLabels split of another dataset',
         lambda c: check_dataset(
             c.model, TRAIN,
             c.voc([zero_shot_labels(zero_shot_split='context59')]),
             training=True),
         r"`train_dataloader\.dataset\.pipeline\.2` \(ZegOTZeroShotLabels\) "
         r"relabels the classes of split 'context59'.*give it the dataset's "
         r'`zero_shot_split`'),
    Case('ZegOTZeroShotLabels setting is not the model setting',
         lambda c: check_dataset(
             c.zegot(setting='transductive',
                     decode_head=dict(seen_bias=0.0)),
             TRAIN,
             c.voc([zero_shot_labels(zero_shot_split='voc',
                                     setting='inductive')]),
             training=True),
         r"`train_dataloader\.dataset\.pipeline\.2\.setting`='inductive' "
         r"but `model\.setting`='transductive'"),
    Case('ZegOTZeroShotLabels hides other classes than the model',
         lambda c: check_dataset(
             c.model, TRAIN,
             c.voc([zero_shot_labels(zero_shot_split=dict(
                 name='voc', unseen_classes=['sofa']))]),
             training=True),
         r"hides \['sofa'\] but the model .* has \['pottedplant', 'sheep', "
         r"'sofa', 'train', 'tvmonitor'\] unseen"),
    Case('seen and unseen overlap in the dataset metainfo',
         lambda c: c.voc(metainfo=dict(seen_classes=VOC.classes)),
         r'`metainfo\.seen_classes`.*disagrees with `zero_shot_split`'),
    Case('seen and unseen overlap in the metric dataset_meta',
         lambda c: metric_with(dict(classes=('a', 'b', 'c'),
                                    seen_classes=('a', 'b'),
                                    unseen_classes=('b', ))),
         r'are not the complement of its `unseen_classes`'),
    # num_classes / palette vs the vocabulary.
    Case('stock head num_classes is not the number of dataset classes',
         lambda c: check_dataset(c.stock_fcn(), TRAIN, c.voc(),
                                 training=True),
         r'`model\.decode_head\.num_classes`=21 but '
         r'`train_dataloader\.dataset` has 20 classes: set num_classes=20'),
    Case('palette shorter than the classes (mmseg\'s own check)',
         lambda c: c.custom(('a', 'b', 'c'), {'a': [0]},
                            palette=[[0, 0, 0], [1, 1, 1]]),
         r'palette does not match classes'),
    # Label values in the data (first label files, ZegOTStartupCheckHook).
    Case('label value out of range',
         lambda c: check_label_files(
             TRAIN, c.custom(('a', 'b', 'c'),
                             {'good': [0, 1, 255], 'bad': [0, 2, 7, 255]}),
             num_files=8, ignore_index=255),
         r'`train_dataloader\.dataset`: the label file \S*bad\.png holds '
         r'the values \[7\] \(read with reduce_zero_label=False\), which are '
         r'neither class indices in \[0, 3\).*nor the ignore index 255\. '
         r'Prepare the labels.*tools/check_dataset\.py'),
    Case('1-based labels read without reduce_zero_label',
         lambda c: check_label_files(
             TRAIN, c.custom(('a', 'b', 'c'), {'one': [0, 1, 2, 3]}),
             num_files=8, ignore_index=255),
         r'holds the values \[3\].*set '
         r'`train_dataloader\.dataset\.reduce_zero_label=True`'),
    Case('num_label_files of the start-up check is negative',
         lambda c: ZegOTStartupCheckHook(num_label_files=-1),
         r'`num_label_files` must be an integer >= 0'),
    # Input sizes vs the patch size (ZegOTSegmentor).
    Case('training pad size not a multiple of the patch size',
         lambda c: c.zegot(data_preprocessor=dict(size=(36, 36))),
         r'`model\.data_preprocessor\.size`=\(36, 36\) is not a multiple of '
         r"the patch size 8×8 .*model_name='tiny'.*use e\.g\. \(40, 40\)"),
    # N and L (ZegOTPromptTextEncoder).
    Case('num_prompts (N) not an integer',
         lambda c: c.zegot(text_encoder=dict(num_prompts=2.5)),
         r'`num_prompts` must be an integer, got 2\.5'),
    Case('prompt_length (L) not an integer',
         lambda c: c.zegot(text_encoder=dict(prompt_length=True)),
         r'`prompt_length` must be an integer, got True'),
]


@pytest.mark.parametrize('case', CASES, ids=[case.what for case in CASES])
def test_mistake_fails_naming_key_and_fix(ctx, case):
    with pytest.raises(ValueError, match=case.match):
        case.make(ctx)


#: Mistakes whose checks are proven by the component's own tests.
COVERED_ELSEWHERE = [
    ('unseen class not in the classes (split)',
     'tests/test_datasets/test_splits.py::'
     'test_make_split_unknown_unseen_names_the_key_and_valid_names'),
    ('unseen class not in the classes (dataset)',
     'tests/test_datasets/test_zero_shot_datasets.py::'
     'test_malformed_split_arguments'),
    ('seen class not in class_names (model)',
     'tests/test_models/test_segmentors/test_zegot_segmentor.py::'
     'test_invalid_config_raises_naming_the_key'),
    ('unseen class not in the classes (metric)',
     'tests/test_evaluation/test_zero_shot_iou_metric.py::'
     'test_missing_or_inconsistent_split_fails_when_meta_is_set'),
    ('duplicate, empty or blank class names (split)',
     'tests/test_datasets/test_splits.py::test_make_split_rejects_bad_worlds'),
    ('duplicate or empty class names (model)',
     'tests/test_models/test_segmentors/test_zegot_segmentor.py::'
     'test_invalid_config_raises_naming_the_key'),
    ('duplicate or empty class names (text encoder vocabulary)',
     'tests/test_models/test_text_encoder/test_prompt_text_encoder.py::'
     'test_invalid_arguments'),
    ('every class unseen',
     'tests/test_datasets/test_splits.py::test_make_split_rejects_bad_worlds'),
    ('split does not match the dataset classes (dataset build)',
     'tests/test_datasets/test_zero_shot_datasets.py::'
     'test_split_that_does_not_match_the_dataset_is_refused'),
    ('ZegOT head num_classes is not the number of class_names',
     'tests/test_models/test_segmentors/test_zegot_segmentor.py::'
     'test_invalid_config_raises_naming_the_key'),
    ('out_indices beyond the ViT depth',
     'tests/test_models/test_backbones/test_clip_vit.py::'
     'test_out_indices_validation'),
    ('num_prompts < 1, prompt_length < 0 or too long for the context',
     'tests/test_models/test_text_encoder/test_prompt_text_encoder.py::'
     'test_invalid_arguments'),
    ('CLIP weights path does not exist',
     'tests/test_models/test_utils/test_clip_utils.py::test_missing_file'),
    ('CLIP weights path is a folder',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_directory_is_not_a_checkpoint'),
    ('CLIP weights file is not a checkpoint',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_files_that_are_not_checkpoints'),
    ('CLIP weights of another architecture (shape mismatch named)',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_weights_for_another_architecture'),
    ('CLIP text tower of another width (shape mismatch named)',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_text_tower_shape_mismatch'),
    ('CLIP weights missing: no pretrained set',
     'tests/test_models/test_backbones/test_clip_vit.py::'
     'test_init_weights_without_pretrained'),
    ('OpenAI weights with quick_gelu=False',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_quick_gelu_false_with_openai_weights_is_an_error'),
    ('OpenAI weights loaded into a GELU build',
     'tests/test_models/test_backbones/test_clip_vit.py::'
     'test_torchscript_archive_loads_with_quick_gelu'),
    ('checkpoint made with the other activation',
     'tests/test_models/test_backbones/test_clip_vit.py::'
     'test_checkpoint_with_other_activation_is_refused'),
    ('CLIP weights that record their activation built with the other one',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_recorded_activation_is_used_and_enforced'),
    ('a plain CLIP state dict that records nothing, quick_gelu not set',
     'tests/test_models/test_utils/test_clip_utils.py::'
     'test_plain_state_dict_needs_quick_gelu_set'),
]


@pytest.mark.parametrize('what,node', COVERED_ELSEWHERE,
                         ids=[what for what, _ in COVERED_ELSEWHERE])
def test_case_is_covered_elsewhere(what, node):
    path, name = node.split('::')
    tree = ast.parse((REPO / path).read_text())
    tests = {node.name for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef)}
    assert name in tests, f'{what}: {node} no longer exists'


def test_consistent_run_passes_every_check(ctx):
    """The checks accept what the shipped configs do: one split for the
    datasets, the model, the transform and the metric."""
    dataset = ctx.voc([zero_shot_labels(zero_shot_split='voc')])
    check_dataset(ctx.model, TRAIN, dataset, training=True)
    check_dataset(ctx.model, 'val_dataloader.dataset', dataset,
                  training=False)
    check_metric(ctx.model, 'val_evaluator', metric_with(dataset.metainfo))
    check_label_files(TRAIN, dataset, num_files=8, ignore_index=255)


def test_fully_supervised_model_ignores_the_training_split(ctx):
    """In the 'fully' setting every label is used, so a fully supervised
    training dataset (no unseen classes) is fine; evaluation still uses
    the split."""
    model = ctx.zegot(setting='fully', decode_head=dict(seen_bias=0.0))
    check_dataset(model, TRAIN, ctx.voc(fully_supervised=True),
                  training=True)
    check_metric(model, 'val_evaluator', metric_with(ctx.voc().metainfo))


def test_label_check_reads_only_the_first_files(ctx):
    """The sample is the first ``num_files`` files of the list: a bad file
    after them is not read (tools/check_dataset.py reads them all)."""
    dataset = ctx.custom(('a', 'b'), {'a0': [0], 'a1': [1], 'z_bad': [9]})
    check_label_files(TRAIN, dataset, num_files=2, ignore_index=255)
    with pytest.raises(ValueError, match=r'z_bad\.png holds the values \[9\]'):
        check_label_files(TRAIN, dataset, num_files=3, ignore_index=255)


def test_unreadable_label_file_is_left_to_the_dataset(ctx, log_messages):
    dataset = ctx.custom(('a', 'b'), {'a0': [0], 'a1': [1]})
    Path(dataset.get_data_info(0)['seg_map_path']).write_bytes(b'not a png')
    check_label_files(TRAIN, dataset, num_files=8, ignore_index=255)
    assert any('could not read the label file' in m for m in log_messages)


def test_start_up_check_runs_in_the_runner(ctx, tmp_path):
    """Wired in through configs/_base_/default_runtime.py: a shipped config
    whose model and datasets disagree stops before the first iteration."""
    torch.save(build_clip('tiny', ctx.clip_cfg).state_dict(),
               tmp_path / 'clip.pth')
    cfg = Config.fromfile(REPO / 'configs' / 'zegot' / 'zegot_vitb16_voc.py')
    assert dict(type='ZegOTStartupCheckHook', num_label_files=8) in (
        cfg.custom_hooks)
    tiny = copy.deepcopy(ctx.zegot_cfg(
        zero_shot_split=dict(name='voc', unseen_classes=['sofa'])))
    for tower in ('image_encoder', 'text_encoder'):
        tiny[tower]['pretrained'] = str(tmp_path / 'clip.pth')
    cfg.model = tiny
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'startup_check_{tmp_path.name}'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_dataloader.dataset = dict(
        type='ZegOTPascalVOC20Dataset', data_root=ctx.voc_root,
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt', pipeline=LOADING + [
            dict(type='PackSegInputs')])
    cfg.val_dataloader.dataset = cfg.train_dataloader.dataset
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_iters = 1
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r"treats \['sofa'\] as unseen"):
        runner.train()
    assert runner.iter == 0
