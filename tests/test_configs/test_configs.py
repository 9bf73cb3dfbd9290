# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Every shipped config (the library's and those of ``projects/``) parses,
builds its model (CLIP weights off: building loads nothing) and its datasets
(``lazy_init``), and the model's vocabulary is the datasets' split."""
import copy
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from mmseg_zegot.utils import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    str(path.relative_to(REPO))
    for folder in ('configs/zegot', 'configs/examples',
                   'projects/toy_world/configs')
    for path in (REPO / folder).glob('*.py'))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_every_config_folder_is_covered():
    assert len(CONFIGS) >= 17
    shipped = {str(p.relative_to(REPO)) for p in [
        *(REPO / 'configs').rglob('*.py'),
        *(REPO / 'projects').glob('*/configs/**/*.py')
    ] if '_base_' not in p.parts}
    assert shipped == set(CONFIGS)
    assert 'projects/toy_world/configs/zegot_toy.py' in shipped


def lazy(dataset_cfg):
    """A dataset config that builds without reading any file."""
    cfg = copy.deepcopy(dataset_cfg)
    cfg['lazy_init'] = True
    if 'datasets' in cfg:
        cfg['datasets'] = [lazy(inner) for inner in cfg['datasets']]
    return cfg


def leaf_datasets(dataset):
    return [leaf for inner in getattr(dataset, 'datasets', []) for leaf in
            leaf_datasets(inner)] or [dataset]


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds(config):
    cfg = load_config(str(REPO / config))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    datasets = {
        loader: DATASETS.build(lazy(cfg[loader].dataset))
        for loader in LOADERS if cfg.get(loader)
    }
    assert 'test_dataloader' in datasets
    for loader, dataset in datasets.items():
        for leaf in leaf_datasets(dataset):
            # Evaluation never drops an image silently: a corrupted file
            # under `skip_corrupted=True` is left out of the list, counted.
            assert leaf.test_mode == (loader != 'train_dataloader'), loader
            meta = leaf.metainfo
            assert meta['seen_classes'] and 'unseen_classes' in meta, loader
            if cfg.model.type != 'ZegOTSegmentor':
                assert cfg.model.decode_head.num_classes == len(
                    meta['classes'])
                continue
            # One source of truth: the model's vocabularies are the split.
            assert model.class_names == tuple(meta['classes']), loader
            if model.setting == 'inductive':
                assert model.seen_classes == tuple(meta['seen_classes'])
                assert model.train_classes == tuple(meta['seen_classes'])
            else:
                assert model.train_classes == tuple(meta['classes'])
    if cfg.model.type == 'ZegOTSegmentor':
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable and not any(
            n.startswith(('image_encoder.', 'text_encoder.clip.'))
            for n in trainable)


@pytest.mark.parametrize('config', [c for c in CONFIGS if 'eval-' in c])
def test_cross_dataset_configs_are_test_only(config):
    cfg = load_config(str(REPO / config))
    assert cfg.train_cfg is None and cfg.train_dataloader is None
    assert cfg.model.decode_head.seen_bias == 0.0


@pytest.mark.parametrize('config', [
    c for c in CONFIGS if c.endswith(('_transductive.py', '_fully.py'))
])
def test_transductive_and_fully_configs(config):
    cfg = load_config(str(REPO / config))
    assert cfg.model.decode_head.seen_bias == 0.0
    if 'transductive' in config:
        base = load_config(str(REPO / config.replace('_transductive', '')))
        assert cfg.model.setting == 'transductive'
        # Self-training starts from the half-way inductive checkpoint (the
        # toy world's from the final one: its inductive runs keep only that,
        # as docs/toy_benchmark.md measured) and trains half as long.
        half = base.train_cfg.max_iters // 2
        start = 2 * half if '_toy' in config else half
        assert cfg.load_from.endswith(f'iter_{start}.pth')
        assert cfg.train_cfg.max_iters == half
        check = cfg.default_hooks.load_from_check
        assert check.type == 'ZegOTLoadFromCheckHook'
        assert (check.source_config, check.source_iter) == (
            config.replace('_transductive', ''), start)


@pytest.mark.parametrize('config', [
    c for c in CONFIGS if c.endswith('_transductive.py')
])
def test_the_source_run_keeps_the_checkpoint_load_from_names(config):
    """The run of ``source_config`` writes ``load_from`` (same work folder,
    same iteration) and keeps it to the end: it is the final checkpoint, or
    one of its checkpoint hook's ``keep_iters`` (``max_keep_ckpts`` deletes
    every other one)."""
    cfg = load_config(str(REPO / config))
    check = cfg.default_hooks.load_from_check
    source = load_config(str(REPO / check.source_config))
    stem = Path(check.source_config).stem
    assert cfg.load_from == f'work_dirs/{stem}/iter_{check.source_iter}.pth'
    hook = source.default_hooks.checkpoint
    assert hook.type == 'ZegOTCheckpointHook' and not hook.by_epoch
    final = source.train_cfg.max_iters
    assert (check.source_iter in hook.get('keep_iters', ())
            or (check.source_iter == final and final % hook.interval == 0))


def test_single_gpu_config_keeps_effective_batch():
    four = load_config(str(REPO / 'configs/zegot/zegot_vitb16_voc.py'))
    one = load_config(
        str(REPO / 'configs/zegot/zegot_vitb16_voc_1xb4-accum4.py'))
    accum = one.optim_wrapper.accumulative_counts
    assert one.train_dataloader.batch_size * accum == 16
    assert one.train_cfg.max_iters == four.train_cfg.max_iters * accum
    assert [s['end'] for s in one.param_scheduler] == [
        s['end'] * accum for s in four.param_scheduler
    ]
