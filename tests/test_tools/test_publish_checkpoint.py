# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Publishing (:func:`mmseg_zegot.utils.publish.publish_file`, the steps of
tools/publish_checkpoint.py) a checkpoint written by tools/train.py, and
tools/test.py on the published file: same metrics as the full checkpoint.
(Loading errors are tested in tests/test_utils/test_published.py.)"""
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO, TINY_CLIP_CFG, run_tool
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_zegot.models.utils import build_clip
from mmseg_zegot.utils import (
    PUBLISHED_FORMAT,
    config_from_stored_text,
    read_checkpoint,
)
from mmseg_zegot.utils.publish import PublishError, publish_file
from projects.toy_world.toy_world import generate_world

CONFIG = 'projects/toy_world/configs/zegot_toy.py'


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny toy world and CLIP, and a 2-iteration ZegOT run on them.

    Returns:
        tuple: (--cfg-options list, the training checkpoint).
    """
    root = tmp_path_factory.mktemp('publish')
    generate_world(str(root / 'world'), num_train=4, num_val=2, size=(32, 32))
    torch.manual_seed(0)
    torch.save(build_clip('tiny', TINY_CLIP_CFG).state_dict(),
               root / 'clip.pth')
    (root / 'clip.json').write_text(json.dumps(TINY_CLIP_CFG))
    options = [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'model.data_preprocessor.size=(32,32)',
        'model.text_encoder.prompt_length=4',
        'model.image_encoder.out_indices=(0,1)',
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2'
    ]
    options += [f'{loader}.dataset.data_root={root / "world"}'
                for loader in ('train_dataloader', 'val_dataloader',
                               'test_dataloader')]
    for tower in ('image_encoder', 'text_encoder'):
        options += [f'model.{tower}.model_name=tiny',
                    f'model.{tower}.model_cfg={root / "clip.json"}',
                    f'model.{tower}.pretrained={root / "clip.pth"}']
    run_tool('train.py', CONFIG, '--work-dir', root / 'train',
             '--cfg-options', *options)
    return options, root / 'train' / 'iter_2.pth'


def test_published_file_holds_the_trainable_weights(setup, tmp_path):
    _, checkpoint = setup
    path, sha256 = publish_file(str(checkpoint),
                                str(tmp_path / 'zegot_toy.pth'))
    assert path == str(tmp_path / f'zegot_toy-{sha256[:8]}.pth')
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    with open(path, 'rb') as file:
        assert hashlib.sha256(file.read()).hexdigest() == sha256
    published = torch.load(path, weights_only=True)
    assert set(published) == {'state_dict', 'meta'}
    meta = published['meta']
    assert meta['format'] == PUBLISHED_FORMAT
    assert meta['source']['iter'] == 2
    assert meta['unseen_classes'] == ['star', 'moon', 'flower']
    # The stored config rebuilds the model; its trainable parameters (and
    # the towers' activation records) are exactly what was kept.
    init_default_scope('mmseg')
    model = MODELS.build(
        config_from_stored_text(meta['cfg'], path, 'unused').model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(published['state_dict']) == trainable | {
        'image_encoder._extra_state', 'text_encoder._extra_state'}
    full = torch.load(checkpoint, weights_only=True)['state_dict']
    for key in trainable:
        assert torch.equal(published['state_dict'][key], full[key]), key
    assert os.path.getsize(path) < os.path.getsize(checkpoint) / 20


def test_keep_frozen_keeps_everything(setup, tmp_path):
    _, checkpoint = setup
    path, _ = publish_file(str(checkpoint), str(tmp_path / 'all'),
                           keep_frozen=True)
    assert re.fullmatch(r'all-[0-9a-f]{8}\.pth', os.path.basename(path))
    full = torch.load(checkpoint, weights_only=True)['state_dict']
    state = read_checkpoint(path)['state_dict']
    assert set(state) == set(full)


def test_test_tool_on_published_checkpoint(setup, tmp_path):
    options, checkpoint = setup
    # The toy world's types are registered by its project, which a stored
    # config never imports (it is data): the config file is passed, as the
    # tool advises for such checkpoints.
    out = run_tool('publish_checkpoint.py', checkpoint,
                   tmp_path / 'zegot_toy.pth', '--safetensors', '--config',
                   CONFIG, '--cfg-options', *options)
    match = re.search(r'Published (\S+) .*MiB \(from .*sha256 ([0-9a-f]{64})',
                      out)
    path, sha256 = match.groups()
    assert path == str(tmp_path / f'zegot_toy-{sha256[:8]}.safetensors')
    with open(path, 'rb') as file:
        assert hashlib.sha256(file.read()).hexdigest() == sha256

    metrics = {}
    for name, weights in (('full', checkpoint), ('published', path)):
        log = run_tool('test.py', CONFIG, weights, '--work-dir',
                       tmp_path / name, '--cfg-options', *options)
        assert f'Load checkpoint from {weights}' in log
        # Only the published file needs the CLIP towers from the CLIP file.
        assert ('loaded the tiny visual tower' in log) == (
            name == 'published')
        [result] = (tmp_path / name).rglob('*.json')
        metrics[name] = json.loads(result.read_text())
        metrics[name].pop('time', None)
        metrics[name].pop('data_time', None)
    assert set(metrics['full']) >= {'mIoU', 'mIoU.unseen', 'hIoU'}
    assert metrics['published'] == metrics['full']


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_republishing_a_published_file_says_so(setup, tmp_path, suffix):
    _, checkpoint = setup
    path, _ = publish_file(str(checkpoint), str(tmp_path / f'once{suffix}'))
    with pytest.raises(PublishError) as info:
        publish_file(path, str(tmp_path / 'twice.pth'))
    assert str(info.value) == (
        f'{path} is already a published checkpoint; publish the training '
        'checkpoint it came from (work_dirs/.../iter_*.pth) instead.')


def test_tool_exits_with_the_message(setup, tmp_path):
    """The tool turns a refusal into an exit with the message alone."""
    _, checkpoint = setup
    path, _ = publish_file(str(checkpoint), str(tmp_path / 'once.pth'))
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'publish_checkpoint.py'), path,
         str(tmp_path / 'twice.pth')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'{path} is already a published checkpoint; publish the training '
        'checkpoint it came from (work_dirs/.../iter_*.pth) instead.')
