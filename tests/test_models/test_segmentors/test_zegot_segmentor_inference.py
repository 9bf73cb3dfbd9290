# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTSegmentor's leaner slide inference and the head's in-place
calibration give exactly the results of mmseg's implementations."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.models.segmentors import MultimodalEncoderDecoder
from mmseg.registry import MODELS

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(clip_cfg, decoder=True):
    clip = dict(model_name='tiny', model_cfg=clip_cfg, quick_gelu=False)
    head = dict(type='ZegOTHead', num_classes=None, in_channels=None,
                channels=None, in_index=None)
    if not decoder:
        head['decoder'] = None
    cfg = dict(
        type='ZegOTSegmentor',
        image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                           out_indices=(0, 1), **clip),
        text_encoder=dict(type='ZegOTPromptTextEncoder', num_prompts=2,
                          prompt_length=4, **clip),
        decode_head=head,
        class_names=CLASSES,
        seen_classes=CLASSES[:3],
        test_cfg=dict(mode='slide', crop_size=(32, 32), stride=(21, 21)))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.decode_head.init_weights()
    return model.eval()


@pytest.mark.parametrize('size', [(48, 40), (32, 32), (24, 70)])
def test_slide_inference_equals_mmseg(tiny_clip_cfg, size):
    model = build(tiny_clip_cfg)
    inputs = torch.randn(2, 3, *size, generator=torch.Generator()
                         .manual_seed(1))
    metas = [dict(ori_shape=size, img_shape=size, pad_shape=size)] * 2
    with torch.no_grad():
        ours = model.slide_inference(inputs, copy.deepcopy(metas))
        mmseg = MultimodalEncoderDecoder.slide_inference(
            model, inputs, copy.deepcopy(metas))
    assert ours.shape == (2, len(CLASSES), *size)
    assert torch.equal(ours, mmseg)


@pytest.mark.parametrize('decoder', [True, False])
def test_calibrated_prediction_matches_the_formula(tiny_clip_cfg, decoder):
    model = build(tiny_clip_cfg, decoder)
    head = model.decode_head
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator()
                         .manual_seed(2))
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))] * 2
    text = model._text_embeddings(model.test_classes)
    feats = model.extract_feat(inputs)
    logits = head.forward([inputs, feats, text])
    up = {key: torch.nn.functional.interpolate(
        value, size=(32, 32), mode='bilinear', align_corners=False)
        for key, value in logits.items()}
    lam = 0.5 if decoder else 0.0
    expected = (1 - lam) * up['score_logits']
    if decoder:
        expected = expected + lam * up['decoder_logits']
    expected = expected.sigmoid()  # OTSeg: one sigmoid of the mixed logits
    seen = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])[None, :, None, None]
    expected = expected - head.seen_bias * seen
    # With autograd (out of place where autograd needs it) and without.
    text = text.detach().requires_grad_(True)
    prob = head.predict([inputs, feats, text], metas, None)
    torch.testing.assert_close(prob, expected, rtol=1e-6, atol=1e-6)
    prob.sum().backward()
    assert text.grad is not None and torch.isfinite(text.grad).all()
    with torch.no_grad():
        torch.testing.assert_close(
            head.predict([inputs, feats, text], metas, None), expected,
            rtol=1e-6, atol=1e-6)
