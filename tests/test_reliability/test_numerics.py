# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Training stays finite under bf16 and fp16 autocast on the CPU, also on
extreme batches; a batch without labelled pixels trains every class down
(255 pixels are negatives), or, with 255 left out, gives a zero loss and zero
gradients, never NaN; ``tools/train.py --amp`` on a CPU fails clearly."""
import copy
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_zegot.models.backbones import ZegOTCLIPVisionTransformer
from mmseg_zegot.models.text_encoder import ZegOTPromptTextEncoder

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky')
SEEN = ('cat', 'car', 'sky')  # dog (1) and tree (3) are unseen
B, SIZE, STEPS = 2, 32, 3
DTYPES = [torch.bfloat16, torch.float16]


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(clip_cfg, setting='inductive', ignored_as_negative=True):
    clip = dict(model_name='tiny', model_cfg=clip_cfg, quick_gelu=False)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ZegOTSegmentor',
        class_names=CLASSES,
        seen_classes=SEEN,
        setting=setting,
        image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                           out_indices=(0, 1), **clip),
        text_encoder=dict(type='ZegOTPromptTextEncoder', num_prompts=4,
                          prompt_length=4, **clip),
        decode_head=dict(type='ZegOTHead', num_classes=None,
                         in_channels=None, channels=None, in_index=None,
                         seen_bias=0.1 if setting == 'inductive' else 0.0,
                         **losses(ignored_as_negative)),
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[122.771, 116.746, 104.094],
            std=[68.501, 65.579, 66.632], bgr_to_rgb=True, size=(SIZE, SIZE)),
        test_cfg=dict(mode='whole')))
    model.decode_head.init_weights()
    return model.train()


def losses(ignored_as_negative):
    """The head's default losses with ``ignored_as_negative`` set."""
    paths = {}
    for key, suffix in (('loss_decode', ''), ('loss_ot', '_ot')):
        paths[key] = [
            dict(type=kind, loss_name=f'loss_{name}{suffix}',
                 ignored_as_negative=ignored_as_negative)
            for kind, name in (('ZegOTFocalLoss', 'focal'),
                               ('ZegOTDiceLoss', 'dice'))
        ]
    return paths


def random_images():
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (B, 3, SIZE, SIZE), generator=gen,
                         dtype=torch.uint8)


def random_labels():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, len(CLASSES), (B, SIZE, SIZE), generator=gen)


def two_classes():
    """Only cat (0) and car (2): the other classes are absent."""
    labels = torch.zeros(B, SIZE, SIZE, dtype=torch.long)
    labels[:, SIZE // 2:] = 2
    return labels


def full(value):
    return torch.full((B, SIZE, SIZE), value, dtype=torch.long)


#: name -> (images, labels, setting, whether any pixel is a positive).
BATCHES = {
    'all-black images': (torch.zeros(B, 3, SIZE, SIZE, dtype=torch.uint8),
                         random_labels(), 'inductive', True),
    'all-white images': (torch.full((B, 3, SIZE, SIZE), 255,
                                    dtype=torch.uint8),
                         random_labels(), 'inductive', True),
    'one class fills every image': (random_images(), full(0), 'inductive',
                                    True),
    'most classes absent': (random_images(), two_classes(), 'inductive',
                            True),
    'every pixel ignored (255)': (random_images(), full(255), 'inductive',
                                  False),
    'every pixel unseen, inductive': (random_images(), full(1), 'inductive',
                                      False),
    'black and every pixel ignored': (
        torch.zeros(B, 3, SIZE, SIZE, dtype=torch.uint8), full(255),
        'inductive', False),
    'every pixel unseen, transductive (pseudo-labels)': (
        random_images(), full(3), 'transductive', True),
}


def data_batch(images, labels):
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None].clone())
        shape = (SIZE, SIZE)
        sample.set_metainfo(dict(img_shape=shape, ori_shape=shape,
                                 pad_shape=shape))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


def loss_under(model, data, dtype):
    with torch.autocast('cpu', dtype=dtype, enabled=dtype is not None):
        losses = model.loss(**model.data_preprocessor(data, True))
    return sum(value for key, value in losses.items() if 'loss_' in key)


#: (batch name, ignored_as_negative): every batch with the reference losses,
#: and those without a positive pixel also with 255 left out.
CASES = [(name, True) for name in BATCHES] + [
    (name, False) for name, batch in BATCHES.items() if not batch[3]
]


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('name, negative', CASES)
def test_training_stays_finite_under_autocast(tiny_clip_cfg, name, negative,
                                              dtype):
    """Three AdamW steps under autocast: loss, every trainable gradient and
    every parameter finite; the first loss equals the float32 one to the
    precision of the low-precision matmuls; with 255 left out of the losses
    (the ablation), a batch without a positive pixel gives an exact 0 with
    all-zero gradients (with the reference losses it trains every class
    down)."""
    images, labels, setting, _ = BATCHES[name]
    data = data_batch(images, labels)
    reference = build(copy.deepcopy(tiny_clip_cfg), setting, negative)
    expected = loss_under(reference, data, None).item()

    model = build(tiny_clip_cfg, setting, negative)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = loss_under(model, data, dtype)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss), (step, loss)
        if step == 0:
            assert loss.item() == pytest.approx(expected, rel=5e-3, abs=1e-6)
        loss.backward()
        for param in trainable:
            assert param.grad is not None and torch.isfinite(
                param.grad).all()
            if not negative:
                assert not param.grad.any()
        if negative:
            assert loss.item() > 0
        else:
            assert loss.item() == 0.0 and loss.requires_grad
        optimizer.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_score_path_and_sinkhorn_run_in_float32(tiny_clip_cfg, dtype):
    """Under autocast the OT score path (and Sinkhorn inside it) computes in
    float32 and matches the float32 forward closely."""
    model = build(tiny_clip_cfg).eval()
    inputs = model.data_preprocessor(
        data_batch(random_images(), random_labels()), False)['inputs']
    with torch.no_grad():
        reference = model._forward(inputs)
        with torch.autocast('cpu', dtype=dtype):
            low = model._forward(inputs)
    assert low['score_logits'].dtype == torch.float32
    assert torch.isfinite(low['score_logits']).all()
    assert torch.isfinite(low['decoder_logits']).all()
    torch.testing.assert_close(low['score_logits'], reference['score_logits'],
                               rtol=0, atol=0.1)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_zero_embeddings_normalise_to_zero_not_nan(tiny_clip_cfg, dtype):
    """F.normalize's eps (1e-12) is 0 in fp16, so a zero embedding gave
    0/0 = NaN under fp16 autocast; both towers now normalise in float32
    (and keep the autocast dtype)."""
    text = ZegOTPromptTextEncoder(model_name='tiny', model_cfg=tiny_clip_cfg,
                                  num_prompts=2, prompt_length=2,
                                  vocabulary=['cat', 'dog'])
    image = ZegOTCLIPVisionTransformer(model_name='tiny',
                                       model_cfg=tiny_clip_cfg,
                                       out_indices=(0, ))
    with torch.no_grad():
        text.clip.text_projection.zero_()
        image.visual.proj.zero_()
    with torch.autocast('cpu', dtype=dtype):
        embeddings = text.train()()
        _, global_embed = image(torch.zeros(1, 3, 32, 32))
    for out in (embeddings, global_embed):
        assert out.dtype == dtype
        assert torch.equal(out, torch.zeros_like(out))


def test_amp_flag_on_cpu_fails_with_a_clear_message():
    """MMEngine's AmpOptimWrapper asserts a GPU; tools/train.py says so, and
    what to do, before loading any data."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['CUDA_VISIBLE_DEVICES'] = ''
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'train.py'),
         str(REPO / 'projects' / 'toy_world' / 'configs' / 'zegot_toy.py'), '--amp'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert ('ValueError: `--amp` needs a GPU' in result.stderr
            and 'drop `--amp` to train in float32' in result.stderr), (
                result.stderr[-2000:])
