# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy CLIP pretraining script: determinism and loadable weights."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from projects.toy_world.toy_world import pretrain as pretrain_clip
from projects.toy_world.toy_world import toy_clip as tc

PROJECT = Path(__file__).resolve().parents[1]
REPO = PROJECT.parents[1]
SCRIPT = PROJECT / 'tools' / 'pretrain_clip.py'


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def torch_state():
    """Restore the global torch settings the script changes in-process."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    """One ``--quick`` run in a fresh process."""
    out = tmp_path_factory.mktemp('toy_clip_a')
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--quick', '--out-dir', str(out)],
        capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Zero-shot classification' in result.stdout
    return out


def test_quick_run_is_deterministic(quick_run, tmp_path, torch_state):
    pretrain_clip.main(['--quick', '--out-dir', str(tmp_path)])
    assert _sha256(quick_run / 'toy_clip.pth') == _sha256(
        tmp_path / 'toy_clip.pth')
    assert (quick_run / 'toy_clip.json').read_bytes() == (
        tmp_path / 'toy_clip.json').read_bytes()


def test_other_seed_other_weights(quick_run, tmp_path, torch_state):
    pretrain_clip.main(['--quick', '--seed', '1', '--out-dir', str(tmp_path)])
    assert _sha256(quick_run / 'toy_clip.pth') != _sha256(
        tmp_path / 'toy_clip.pth')


def test_weights_load_strictly_into_open_clip(quick_run):
    cfg = json.loads((quick_run / 'toy_clip.json').read_text())
    assert cfg == json.loads(json.dumps(tc.TOY_CLIP_CFG))
    state = torch.load(quick_run / 'toy_clip.pth', weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert all(v.dtype == torch.float16 for v in state.values()
               if v.is_floating_point())
    model = open_clip.CLIP(**cfg)
    model.load_state_dict(state, strict=True)
    assert model.visual.conv1.weight.dtype == torch.float32
    torch.testing.assert_close(model.visual.proj.detach(),
                               state['visual.proj'].float())
    # Tokens no caption used are zeroed; the class names are not.
    embedding = model.token_embedding.weight.detach()
    used = embedding.abs().sum(1) > 0
    assert 20 < int(used.sum()) < 200
    names = tc.tokenize(['circle moon flower'])[0, 1:4]
    assert used[names].all()
    # The model runs on toy images and class prompts.
    text = tc.encode_class_names(model, ['circle', 'moon'])
    images = tc.normalize_images(np.zeros((2, 64, 64, 3), np.uint8))
    feats = tc.patch_embeddings(model.visual, images, maskclip=True)
    assert text.shape == (2, 64)
    assert feats['layer5'].shape == feats['maskclip'].shape == (2, 64, 8, 8)
    report = json.loads((quick_run / 'toy_clip_report.json').read_text())
    assert report['sha256'] == _sha256(quick_run / 'toy_clip.pth')
    assert set(report['classification']['per_class']) == set(report['classes'])


def test_contrastive_positives_are_the_true_captions():
    images, captions, positive = pretrain_clip.make_batch(
        0, 0, 32, (64, 64), None, 'described')
    assert images.shape == (32, 64, 64, 3) and len(captions) == 32
    assert positive.dtype == torch.bool and positive.diagonal().all()
    # A loss with perfect, confident embeddings puts its mass on positives:
    # lower than with the same embeddings shuffled.
    emb = torch.nn.functional.normalize(
        torch.randn(32, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    aligned = pretrain_clip.contrastive_loss(emb, emb, 50.0, positive)
    shuffled = pretrain_clip.contrastive_loss(emb, emb.roll(1, 0), 50.0,
                                              positive)
    assert aligned < shuffled
    # Only one positive per row: plain symmetric InfoNCE.
    eye = torch.eye(4, dtype=torch.bool)
    logits = 2.0 * emb[:4] @ emb[4:8].t()
    target = torch.arange(4)
    expected = (torch.nn.functional.cross_entropy(logits, target) +
                torch.nn.functional.cross_entropy(logits.t(), target)) / 2
    torch.testing.assert_close(
        pretrain_clip.contrastive_loss(emb[:4], emb[4:8], 2.0, eye), expected)
