# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A rehearsal of every shipped config at real geometry and real schedule
shape, through the tools, as a user runs them.

Each config of ``configs/zegot/`` and ``configs/examples/`` runs on a
synthetic dataset in its real on-disk layout and label convention (VOC aug,
Context-59, COCO-Stuff 164k) with image sizes of the real dataset (both
orientations) plus an extreme aspect ratio and a small image, with the
config's own pipelines, crops, data preprocessor, slide settings, hooks and
checkpoint retention. Three things change:

* CLIP is tiny (2 layers, width 64, built from an inline open_clip config)
  but has the real patch size (16) and runs at the real input resolution
  (its positional embeddings are interpolated from a 14×14 grid, as
  ViT-B/16's are); the DLFA taps are its two layers. The closed-set FCN
  example gets the same treatment: a ResNet-18 of 1/8 width.
* Every iteration number of a schedule is divided by one factor, the
  inductive run's length over :data:`ITERATIONS` (a transductive config
  takes its inductive config's), so validation and checkpoint intervals,
  ``max_keep_ckpts`` and the transductive ``load_from`` iteration keep their
  ratios; a warm-up shorter than the factor is rounded up to one iteration.
  Logging runs every iteration.
* Two images per training batch instead of the configs' four (two
  orientations in one batch still exercise padding and collation): the
  losses cost B×K×H×W at the label resolution, about 4 s per image and
  path for COCO-Stuff's 156 seen classes at 512² on 2 CPU cores.

The chain: inductive training with validation -> transductive training from
its half-way checkpoint -> ``tools/test.py`` (with ``--show-dir``) -> the
cross-dataset test configs on the COCO-Stuff model ->
``tools/publish_checkpoint.py`` -> ``tools/test.py`` on the published file
-> ``tools/demo.py`` on a real-size image; ``tools/dist_train.sh`` with two
processes for one config. The toy world's configs
(``projects/toy_world/configs/``, the main job's) run inductive then
transductive on a small toy world with their own toy CLIP.
"""
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY_CLIP_CFG, make_layout_dataset, run_tool
from PIL import Image

from mmseg_zegot.datasets.splits import get_split
from mmseg_zegot.models.utils import build_clip
from mmseg_zegot.utils import load_config
from mmseg_zegot.utils.dist import has_accelerator
from projects.toy_world.toy_world import generate_world

#: A COCO-Stuff chain trains and validates three times at 512² with 171
#: classes: more than the suite's 900 s per test on 2 cores.
pytestmark = pytest.mark.timeout(3600)

#: Iterations of a rehearsed inductive run: its checkpoint and validation
#: intervals are a tenth of the run in every shipped config, so this is the
#: least that saves more checkpoints than ``max_keep_ckpts`` keeps.
ITERATIONS = 10

#: Images per training batch (see the module docstring).
TRAIN_BATCH = 2

#: The tests' 2-layer, width-64 CLIP with ViT-B/16's patch size,
#: pretrained (here: initialised) at 224 px like ViT-B/16.
CLIP_CFG = copy.deepcopy(TINY_CLIP_CFG)
CLIP_CFG['vision_cfg'].update(image_size=224, patch_size=16)

#: (height, width) of the training and the validation images of each
#: layout: typical sizes of the real dataset in both orientations, an
#: extreme aspect ratio and a small image.
SIZES = dict(
    voc=[(375, 500), (500, 375), (120, 500), (48, 64)],
    context59=[(375, 500), (375, 500), (500, 375), (100, 500), (60, 80)],
    coco_stuff=[(427, 640), (640, 480), (120, 640), (50, 64), (480, 640),
                (360, 640)],
)
#: Validation images per layout: the first sizes of :data:`SIZES`.
NUM_VAL = 4
#: The layout of each dataset type.
LAYOUT_OF = dict(
    ZegOTPascalVOC20Dataset='voc',
    ZegOTPascalContext59Dataset='context59',
    ZegOTCOCOStuffDataset='coco_stuff',
)


def config_path(name):
    if name.endswith('_toy') or '_toy_' in name:
        return f'projects/toy_world/configs/{name}.py'
    folder = 'examples' if name.startswith(('fcn', 'zegot_mmseg')) else 'zegot'
    return f'configs/{folder}/{name}.py'


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    """The tiny CLIP's config (JSON) and weights."""
    folder = tmp_path_factory.mktemp('clip')
    torch.manual_seed(0)
    torch.save(build_clip('tiny-16', CLIP_CFG).state_dict(),
               folder / 'clip.pth')
    (folder / 'clip.json').write_text(json.dumps(CLIP_CFG))
    return folder / 'clip.json', folder / 'clip.pth'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """A dataset root per layout, filled on first use."""
    roots = {}

    def root(layout):
        if layout not in roots:
            sizes = SIZES[layout]
            roots[layout] = make_layout_dataset(
                tmp_path_factory.mktemp(layout), layout,
                num_train=len(sizes), num_val=NUM_VAL, size=sizes)
        return roots[layout]

    return root


def leaf_datasets(dataset, key):
    """(config key, dataset config) of every leaf dataset."""
    if 'datasets' in dataset:
        return [leaf for i, inner in enumerate(dataset['datasets'])
                for leaf in leaf_datasets(inner, f'{key}.datasets.{i}')]
    return [(key, dataset)]


def scaled(key, value, factor):
    """``value`` / ``factor``; only a warm-up may round (up)."""
    assert value % factor == 0 or key == 'warm-up', (key, value, factor)
    return -(-value // factor)


def factor_of(name):
    """The divisor of config ``name``'s iteration numbers: its inductive
    run's length over :data:`ITERATIONS`."""
    cfg = load_config(config_path(name))
    if cfg.get('load_from'):
        source = re.search(r'work_dirs/(\S+)/iter_\d+\.pth',
                           cfg.load_from).group(1)
        return factor_of(source)
    if not cfg.get('train_cfg'):  # test only
        return 1
    return cfg.train_cfg.max_iters // ITERATIONS


def start_iter(cfg, factor):
    """The rehearsed iteration of the checkpoint ``load_from`` names."""
    return int(re.search(r'iter_(\d+)\.pth', cfg.load_from).group(1)
               ) // factor


def schedule_options(cfg, factor):
    """--cfg-options dividing every iteration number of ``cfg`` by
    ``factor``."""
    options = []
    if cfg.get('train_cfg'):
        options.append(f'train_dataloader.batch_size={TRAIN_BATCH}')
        for key in ('max_iters', 'val_interval'):
            value = scaled(key, cfg.train_cfg[key], factor)
            options.append(f'train_cfg.{key}={value}')
        for index, scheduler in enumerate(cfg.param_scheduler):
            for key in ('begin', 'end'):
                if key in scheduler:
                    value = scaled('warm-up', scheduler[key], factor)
                    options.append(f'param_scheduler.{index}.{key}={value}')
    hooks = cfg.default_hooks
    checkpoint = hooks.checkpoint
    options.append('default_hooks.checkpoint.interval='
                   f'{scaled("interval", checkpoint.interval, factor)}')
    if checkpoint.get('keep_iters'):
        kept = [scaled('keep_iters', i, factor) for i in checkpoint.keep_iters]
        options.append(f'default_hooks.checkpoint.keep_iters={kept}')
    if hooks.get('load_from_check'):
        options.append('default_hooks.load_from_check.source_iter='
                       f'{start_iter(cfg, factor)}')
    options.append('default_hooks.logger.interval=1')
    return options


def rehearsal_options(name, clip, data):
    """--cfg-options for config ``name``: the datasets, the tiny CLIP (or
    the small FCN backbone) and the scaled schedule."""
    cfg = load_config(config_path(name))
    options = schedule_options(cfg, factor_of(name))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if not cfg.get(loader):
            continue
        for key, dataset in leaf_datasets(cfg[loader].dataset,
                                          f'{loader}.dataset'):
            layout = LAYOUT_OF.get(dataset['type'])
            if layout is not None:
                options.append(f'{key}.data_root={data(layout)}')
    if cfg.model.type == 'ZegOTSegmentor' and '_toy' not in name:
        options += clip_options(clip)
    elif cfg.model.type != 'ZegOTSegmentor':
        # A ResNet-18 of 1/8 width for the ResNet-50, trained from scratch
        # (no ImageNet download); BN, as one process has no SyncBN.
        options += ['model.pretrained=None', 'model.backbone.depth=18',
                    'model.backbone.stem_channels=8',
                    'model.backbone.base_channels=8',
                    'model.decode_head.in_channels=64',
                    'model.decode_head.channels=16',
                    'model.auxiliary_head.in_channels=32',
                    'model.auxiliary_head.channels=16']
        options += [f'model.{part}.norm_cfg.type=BN' for part in (
            'backbone', 'decode_head', 'auxiliary_head')]
    return options


#: What a tool on the CPU logs when it keeps freed memory for reuse.
CPU_MEMORY_LINE = 'CPU run: freed memory stays in the process'


def check_cpu_memory(log):
    """A tool that runs on the CPU keeps freed memory for reuse
    (:mod:`mmseg_zegot.utils.cpu_memory`)."""
    if not has_accelerator():
        assert CPU_MEMORY_LINE in log


def train(name, work_dir, clip, data, *extra):
    """tools/train.py on config ``name``; returns the log."""
    log = run_tool('train.py', config_path(name), '--work-dir', work_dir,
                   '--cfg-options', *rehearsal_options(name, clip, data),
                   *extra)
    check_cpu_memory(log)
    return log


def run_test_tool(name, checkpoint, work_dir, clip, data, *extra):
    """tools/test.py; returns (metrics, log)."""
    log = run_tool('test.py', config_path(name), checkpoint, '--work-dir',
                   work_dir, *extra, '--cfg-options',
                   *rehearsal_options(name, clip, data))
    check_cpu_memory(log)
    [result] = Path(work_dir).rglob('*.json')
    metrics = json.loads(result.read_text())
    for key in ('time', 'data_time'):
        metrics.pop(key, None)
    return metrics, log


def iteration_files(work_dir):
    return sorted((p.name for p in Path(work_dir).glob('iter_*.pth')),
                  key=lambda n: int(n[5:-4]))


def check_validations(log, name):
    """The run validated every ``val_interval`` and reported the zero-shot
    metrics each time."""
    cfg = load_config(config_path(name))
    reports = re.findall(r'Iter\(val\) \[\d+/\d+\]\s+aAcc: .*mIoU\.seen: .*'
                         r'mIoU\.unseen: .*hIoU: ', log)
    assert len(reports) == (cfg.train_cfg.max_iters //
                            cfg.train_cfg.val_interval)


def check_retention(work_dir, name):
    """The iteration checkpoints left: the ``max_keep_ckpts`` last ones and
    those of ``keep_iters``."""
    cfg, factor = load_config(config_path(name)), factor_of(name)
    hook = cfg.default_hooks.checkpoint
    max_iters = cfg.train_cfg.max_iters // factor
    interval = hook.interval // factor
    saved = list(range(interval, max_iters + 1, interval))
    keep = [i // factor for i in hook.get('keep_iters', ())]
    others = [i for i in saved if i not in keep]
    last = others[-hook.max_keep_ckpts:] if hook.get('max_keep_ckpts',
                                                     -1) > 0 else others
    expected = sorted(set(last) | set(keep))
    assert iteration_files(work_dir) == [f'iter_{i}.pth' for i in expected]


def per_class_iou(log, classes):
    """{class: (IoU or nan, 'seen'|'unseen')} from the metric's table."""
    rows = {}
    for line in log.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and cells[0] in classes:
            group = 'unseen' if 'unseen' in cells else 'seen'
            numbers = [c for c in cells[1:] if re.fullmatch(r'[-\d.]+|nan', c)]
            rows[cells[0]] = (float(numbers[0]), group)
    return rows


def check_metrics(metrics, log, split_name):
    """The zero-shot report: numbers in [0, 100] (nan for a group without
    pixels); the per-class table lists the split's classes with its unseen
    ones marked, and mIoU.seen / mIoU.unseen / hIoU follow from it."""
    for key in ('aAcc', 'mIoU', 'mIoU.seen', 'mIoU.unseen', 'hIoU'):
        assert 0.0 <= metrics[key] <= 100.0 or np.isnan(metrics[key]), key
    split = get_split(split_name)
    rows = per_class_iou(log, split.classes)
    assert set(rows) == set(split.classes)
    assert {c for c, (_, group) in rows.items() if group == 'unseen'} == set(
        split.unseen)
    for group in ('seen', 'unseen'):
        values = [v for v, g in rows.values() if g == group and
                  not np.isnan(v)]
        if values:
            assert metrics[f'mIoU.{group}'] == pytest.approx(
                sum(values) / len(values), abs=0.011)
        else:
            assert np.isnan(metrics[f'mIoU.{group}'])
    seen, unseen = metrics['mIoU.seen'], metrics['mIoU.unseen']
    if seen + unseen > 0:
        assert metrics['hIoU'] == pytest.approx(
            2 * seen * unseen / (seen + unseen), abs=0.011)


def final_checkpoint(work_dir, name):
    return Path(work_dir) / iteration_files(work_dir)[-1]


# --------------------------------------------------------------------------
# Inductive runs are module fixtures: the transductive and cross-dataset
# configs start from them.

INDUCTIVE = dict(voc='zegot_vitb16_voc', context59='zegot_vitb16_context59',
                 coco_stuff='zegot_vitb16_coco-stuff')


@pytest.fixture(scope='module')
def inductive(tmp_path_factory, clip, data):
    """The work folder of each inductive config's run, trained on first
    use (with validation)."""
    runs = {}

    def run(dataset):
        if dataset not in runs:
            name = INDUCTIVE[dataset]
            work = tmp_path_factory.mktemp(name)
            check_validations(train(name, work, clip, data), name)
            runs[dataset] = work
        return runs[dataset]

    return run


@pytest.mark.slow
@pytest.mark.parametrize('dataset', list(INDUCTIVE))
def test_inductive_then_transductive_then_test(dataset, inductive, tmp_path,
                                               clip, data):
    """The inductive run keeps its half-way checkpoint; the transductive
    config trains from it; tools/test.py --show-dir tests the result on
    every validation image at its own size."""
    work = inductive(dataset)
    check_retention(work, INDUCTIVE[dataset])
    name = f'{INDUCTIVE[dataset]}_transductive'
    cfg = load_config(config_path(name))
    checkpoint = work / f'iter_{start_iter(cfg, factor_of(name))}.pth'
    assert start_iter(cfg, factor_of(name)) == ITERATIONS // 2
    log = train(name, tmp_path / 'work', clip, data,
                f'load_from={checkpoint}')
    assert f'Load checkpoint from {checkpoint}' in log
    check_validations(log, name)
    check_retention(tmp_path / 'work', name)

    metrics, log = run_test_tool(name,
                                 final_checkpoint(tmp_path / 'work', name),
                               tmp_path / 'test', clip, data, '--show-dir',
                               tmp_path / 'show')
    check_metrics(metrics, log, get_split_name(dataset))
    val_list = (Path(data(dataset)) / 'images' / 'val2017'
                if dataset == 'coco_stuff' else None)
    val_images = (sorted(val_list.glob('*.jpg')) if val_list else [
        Path(data(dataset)) / 'JPEGImages' / f'{stem}.jpg'
        for stem in val_stems(data(dataset), dataset)])
    pictures = sorted((tmp_path / 'show').rglob('*_overlay.png'))
    assert [p.name for p in pictures] == [
        f'{image.stem}_overlay.png' for image in val_images]
    for image, picture in zip(val_images, pictures):
        width, height = Image.open(image).size
        drawn_width, drawn_height = Image.open(picture).size
        assert drawn_height >= height and drawn_width > width


def get_split_name(dataset):
    return dict(voc='voc', context59='context59',
                coco_stuff='coco-stuff')[dataset]


def val_stems(root, dataset):
    lists = 'Segmentation' if dataset == 'voc' else 'SegmentationContext'
    return (Path(root) / 'ImageSets' / lists / 'val.txt').read_text().split()


@pytest.mark.slow
def test_missing_half_way_checkpoint_stops_at_start_up(tmp_path, clip,
                                                        data):
    """The transductive config with its shipped `load_from`, before any
    inductive run."""
    name = 'zegot_vitb16_voc_transductive'
    options = [option for option in rehearsal_options(name, clip, data)
               if not option.startswith('default_hooks.load_from_check')]
    result = subprocess.run(
        [sys.executable, 'tools/train.py', config_path(name), '--work-dir',
         str(tmp_path), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert ("`load_from`='work_dirs/zegot_vitb16_voc/iter_10000.pth' does "
            'not exist. It is the checkpoint that `python tools/train.py '
            'configs/zegot/zegot_vitb16_voc.py` saves at iteration 10000'
            ) in result.stderr
    assert 'Iter(train)' not in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize('name', [
    'zegot_vitb16_coco-stuff_eval-voc',
    'zegot_vitb16_coco-stuff_eval-context59',
])
def test_cross_dataset(name, inductive, tmp_path, clip, data):
    work = inductive('coco_stuff')
    metrics, log = run_test_tool(
        name, final_checkpoint(work, 'zegot_vitb16_coco-stuff'), tmp_path,
        clip, data)
    check_metrics(metrics, log,
                  'voc' if name.endswith('voc') else 'context59')


def clip_options(clip):
    json_file, weights = clip
    return [option for tower in ('image_encoder', 'text_encoder')
            for option in (f'model.{tower}.model_name=tiny-16',
                           f'model.{tower}.model_cfg={json_file}',
                           f'model.{tower}.pretrained={weights}',
                           f'model.{tower}.quick_gelu=False')] + [
                               'model.image_encoder.out_indices=(0,1)']


@pytest.mark.slow
def test_publish_then_test_and_demo(inductive, tmp_path, clip, data):
    """Publish the VOC checkpoint; tools/test.py gives the same metrics on
    the published file (no CLIP in it) as on the full one; tools/demo.py
    segments a real-size image at its size."""
    name = 'zegot_vitb16_voc'
    final = final_checkpoint(inductive('voc'), name)
    log = run_tool('publish_checkpoint.py', final, tmp_path / 'voc.pth')
    published = re.search(r'Published (\S+)', log).group(1)
    full, _ = run_test_tool(name, final, tmp_path / 'full', clip, data)
    ours, log = run_test_tool(name, published, tmp_path / 'published', clip,
                              data)
    assert 'loaded the tiny-16 visual tower' in log
    assert json.dumps(ours, sort_keys=True) == json.dumps(full,
                                                          sort_keys=True)
    check_metrics(ours, log, 'voc')

    stem = val_stems(data('voc'), 'voc')[0]
    image = Path(data('voc')) / 'JPEGImages' / f'{stem}.jpg'
    log = run_tool('demo.py', image, '--config', config_path(name),
                   '--checkpoint', published, '--out', tmp_path / 'demo',
                   '--device', 'cpu', '--cfg-options', *clip_options(clip))
    assert CPU_MEMORY_LINE in log
    label = np.asarray(Image.open(tmp_path / 'demo' /
                                  f'{image.stem}_label.png'))
    assert label.shape == (375, 500)
    assert label.max() < len(get_split('voc').classes)


@pytest.mark.slow
@pytest.mark.parametrize('name', [
    'zegot_vitb16_voc_fully', 'zegot_vitb16_context59_fully',
    'zegot_vitb16_coco-stuff_fully', 'zegot_vitb16_voc_1xb4-accum4',
    'zegot_mmseg-schedule_voc', 'fcn_r50-d8_voc-zero-shot_closed-set'
])
def test_train_with_validation(name, tmp_path, clip, data):
    check_validations(train(name, tmp_path, clip, data), name)
    check_retention(tmp_path, name)


@pytest.mark.slow
def test_toy_inductive_then_transductive(tmp_path, clip, data):
    """The README's main job's configs (their own toy CLIP), on a small toy
    world."""
    world = tmp_path / 'world'
    generate_world(str(world), num_train=8, num_val=8)
    roots = [f'{loader}.dataset.data_root={world}' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]
    check_validations(train('zegot_toy', tmp_path / 'inductive', clip, data,
                            *roots), 'zegot_toy')
    check_retention(tmp_path / 'inductive', 'zegot_toy')
    name = 'zegot_toy_transductive'
    start = start_iter(load_config(config_path(name)), factor_of(name))
    checkpoint = tmp_path / 'inductive' / f'iter_{start}.pth'
    log = train(name, tmp_path / 'transductive', clip, data, *roots,
                f'load_from={checkpoint}')
    assert f'Load checkpoint from {checkpoint}' in log
    check_validations(log, name)


@pytest.mark.slow
def test_dist_train_two_processes(tmp_path, clip, data):
    """tools/dist_train.sh with 2 processes (gloo on the CPU)."""
    name = 'zegot_vitb16_voc_fully'
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(PYTHON=sys.executable, PORT='29533')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', config_path(name), '2',
         '--work-dir', str(tmp_path), '--cfg-options',
         *rehearsal_options(name, clip, data)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-6000:]
    check_validations(result.stdout + result.stderr, name)
    check_retention(tmp_path, name)
