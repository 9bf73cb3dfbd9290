# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Every way a user's file can be loaded refuses a crafted pickle.

The crafted checkpoint holds an object whose unpickling would create a
marker file (``os.system('touch MARKER')``). Each entry point must refuse it
with a message naming the file and the ``--trust`` conversion, and the
marker must never appear: ``tools/test.py CKPT``, ``tools/train.py
--resume``, ``load_from``, mmengine's ``load_checkpoint`` (``init_cfg``
pretrained weights, mmseg's ``init_model``), http(s) URLs and the
``open-mmlab://`` names that resolve to them, CLIP ``pretrained`` files
(plain state dicts and TorchScript archives), ``tools/init_checkpoint.py``,
``tools/convert_checkpoint.py`` without ``--trust``,
``tools/publish_checkpoint.py`` and the inference API's loader.
A checkpoint that loads safely but stores config text holding code is
published without running that code (issue 18). The in-process cases use
MMEngine's loaders as :mod:`mmseg_zegot.safe_loading` (the opt-in our
configs list and our tools import) installs them.
"""
import functools
import http.server
import os
import pickle
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import mmengine.runner.checkpoint as mmengine_checkpoint
import pytest
import torch
from conftest import TINY_CLIP_CFG, make_voc_dataset
from mmengine.runner import CheckpointLoader, load_checkpoint
from torch import nn
from toy_runner import LinearModel, build_runner

import mmseg_zegot.safe_loading  # noqa: F401  (the opt-in of our configs and tools)
from mmseg_zegot.models.utils import build_clip, load_clip_weights
from mmseg_zegot.utils import UnsafeCheckpointError, load_segmentor_checkpoint

REPO = Path(__file__).resolve().parents[2]
FCN_CONFIG = REPO / 'tests' / 'data' / 'configs' / 'tiny_fcn_voc.py'
REFUSAL = 'tools/convert_checkpoint.py --trust'


class Exploit:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def evil(tmp_path):
    """(crafted checkpoint, marker file its payload would create)."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'meta': {'iter': 2}, 'state_dict': {'w': torch.ones(1)},
                'payload': Exploit(marker)}, path)
    yield path, marker
    assert not marker.exists(), 'the payload ran'


def run(tool, *args):
    """A tool as a user runs it; returns (exit code, output)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / tool), *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def assert_refused(code, out, path):
    assert code != 0
    assert f'Refusing to load {path}' in out and REFUSAL in out, out[-3000:]


@pytest.mark.slow
def test_test_tool(evil):
    path, _ = evil
    assert_refused(*run('test.py', FCN_CONFIG, path), path)


@pytest.mark.slow
def test_train_tool_resume(evil, tmp_path):
    path, _ = evil
    data_root = make_voc_dataset(tmp_path / 'voc', num_train=2, num_val=1)
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(path))
    options = [f'{loader}.dataset.data_root={data_root}' for loader in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    assert_refused(*run('train.py', FCN_CONFIG, '--work-dir', work,
                        '--resume', '--cfg-options', *options), path)


def test_runner_load_from(evil, tmp_path):
    path, _ = evil
    runner = build_runner(tmp_path / 'work', dict(type='CheckpointHook'),
                          max_iters=1, load_from=str(path))
    with pytest.raises(UnsafeCheckpointError, match=REFUSAL):
        runner.train()


def test_mmengine_load_checkpoint(evil):
    """mmengine's ``load_checkpoint``: ``init_cfg=dict(type='Pretrained')``
    and mmseg's ``init_model`` load through it."""
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError, match=REFUSAL):
        load_checkpoint(LinearModel(), str(path))


def test_inference_api_loader(evil):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError, match=REFUSAL):
        load_segmentor_checkpoint(LinearModel(), str(path))


def test_refused_even_when_torch_is_told_not_to_check(evil, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 only changes torch.load calls that
    do not pass weights_only; ours always pass True."""
    path, _ = evil
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))


@pytest.fixture
def server(evil, tmp_path, monkeypatch):
    """The crafted checkpoint served over HTTP on localhost; torch's hub
    cache in ``tmp_path``."""
    path, _ = evil

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Quiet, directory=path.parent))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    yield f'http://127.0.0.1:{httpd.server_port}/{path.name}'
    httpd.shutdown()


def test_url(server):
    """MMEngine reads URLs with torch.hub's weights_only=False default;
    mmseg_zegot replaces that loader."""
    with pytest.raises(UnsafeCheckpointError, match=REFUSAL):
        CheckpointLoader.load_checkpoint(server, map_location='cpu')


def test_openmmlab_name_resolving_to_a_url(server, monkeypatch):
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models',
                        lambda: {'evil_model': server})
    with pytest.raises(UnsafeCheckpointError, match=REFUSAL):
        CheckpointLoader.load_checkpoint('open-mmlab://evil_model')


def test_clip_pretrained(evil):
    path, _ = evil
    visual = build_clip('tiny', TINY_CLIP_CFG).visual
    with pytest.raises(ValueError,
                       match=r'(?s)could not be read with torch.load\('
                       r'weights_only=True\).*refused'):
        load_clip_weights(visual, str(path), model_name='tiny',
                          tower='visual')


class Scale(nn.Module):
    """A TorchScript-able module, to build a real TorchScript archive."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))

    def forward(self, x):
        return x * self.weight


def test_clip_pretrained_torchscript(evil, tmp_path):
    """OpenAI's CLIP files are TorchScript archives, read with
    torch.jit.load. A real archive whose data.pkl is the crafted pickle:
    TorchScript's unpickler resolves only TorchScript types and refuses
    the payload's global."""
    _, marker = evil
    real = tmp_path / 'real.pt'
    torch.jit.save(torch.jit.script(Scale()), real)
    archive = tmp_path / 'ViT-B-16.pt'
    payload = pickle.dumps(Exploit(marker), protocol=2)
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(archive, 'w') as dst:
        for name in src.namelist():
            dst.writestr(name, payload if name.endswith('/data.pkl') else
                         src.read(name))
    visual = build_clip('tiny', TINY_CLIP_CFG).visual
    with pytest.raises(ValueError, match=r"(?s)TorchScript archive but could "
                       r"not be loaded.*Unknown type name 'posix.system'"):
        load_clip_weights(visual, str(archive), model_name='tiny',
                          tower='visual')


@pytest.mark.slow
def test_init_checkpoint_tool(evil, tmp_path):
    path, _ = evil
    code, out = run('init_checkpoint.py',
                    'projects/toy_world/configs/dense-clip_toy.py',
                    tmp_path / 'out.pth', '--cfg-options',
                    f'model.image_encoder.pretrained={path}',
                    f'model.text_encoder.pretrained={path}')
    assert code != 0 and not (tmp_path / 'out.pth').exists()
    assert (f'pretrained={str(path)!r} ({path}) could not be read with '
            'torch.load(weights_only=True)') in out, out[-3000:]


@pytest.mark.slow
def test_convert_tool_without_trust(evil, tmp_path):
    path, _ = evil
    code, out = run('convert_checkpoint.py', path, tmp_path / 'out.pth')
    assert code != 0 and '--trust' in out
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.slow
def test_publish_tool(evil, tmp_path):
    path, _ = evil
    assert_refused(*run('publish_checkpoint.py', path, tmp_path / 'out.pth'),
                   path)


@pytest.mark.parametrize('cfg_text', [
    "_x = __import__('os').system('touch {marker}')\n"
    "model = dict(type='ZegOTSegmentor')",
    "model = dict(type='subprocess.getoutput', cmd='touch {marker}')",
], ids=['code', 'unregistered-type'])
def test_publish_tool_never_runs_the_stored_config(cfg_text, tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'iter_2.pth'
    torch.save({'meta': {'iter': 2, 'cfg': cfg_text.format(marker=marker)},
                'state_dict': {'w': torch.ones(1)}}, path)
    code, out = run('publish_checkpoint.py', path, tmp_path / 'out.pth')
    assert not marker.exists(), 'the stored config ran'
    assert code != 0 and not (tmp_path / 'out.pth').exists()
    assert f'The config stored in {path} ' in out, out[-3000:]
    assert (f'pass the config {path} was trained with (a file you trust) as '
            '--config CONFIG.') in out
