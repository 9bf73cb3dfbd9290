# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTSegmentor's leaner slide inference and the head's in-place
calibration give exactly the results of mmseg's implementations; inputs of
any size give scores aligned with their pixels, at their own size."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.models.segmentors import MultimodalEncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(clip_cfg, decoder=True, mode='slide'):
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
        test_cfg=dict(mode=mode, crop_size=(32, 32), stride=(21, 21)))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.decode_head.init_weights()
    return model.eval()


@pytest.mark.parametrize('size', [(48, 40), (32, 32), (24, 70), (30, 45),
                                  (13, 90)])
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


@pytest.mark.parametrize('size', [(30, 45), (13, 90), (5, 6)])
def test_scores_of_a_partial_patch_input_are_cropped_from_the_padded_input(
        tiny_clip_cfg, size):
    """An H×W input that is not whole patches scores like the same input
    padded (with the mean colour, 0 once normalised) to whole patches, then
    cropped back to H×W: each pixel keeps its own patch's score."""
    model = build(tiny_clip_cfg)
    inputs = torch.randn(1, 3, *size, generator=torch.Generator()
                         .manual_seed(3))
    padded = model.image_encoder.padded_size(size)
    with torch.no_grad():
        scores = model.encode_decode(inputs, [dict(img_shape=size)])
        expected = model.encode_decode(
            F.pad(inputs, (0, padded[1] - size[1], 0, padded[0] - size[0])),
            [dict(img_shape=padded)])
    assert scores.shape == (1, len(CLASSES), *size)
    torch.testing.assert_close(scores, expected[:, :, :size[0], :size[1]],
                               rtol=0, atol=0)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
@pytest.mark.parametrize('size', [(30, 125), (125, 30), (9, 11)])
def test_prediction_comes_back_at_the_original_size(tiny_clip_cfg, mode,
                                                    size):
    """An image resized by the test pipeline (here 2×) to sides that are not
    whole patches is predicted at its original size."""
    model = build(tiny_clip_cfg, mode=mode)
    ori_shape = tuple(side // 2 for side in size)
    sample = SegDataSample(metainfo=dict(ori_shape=ori_shape,
                                         img_shape=size))
    inputs = torch.randn(1, 3, *size, generator=torch.Generator()
                         .manual_seed(4))
    with torch.no_grad():
        result = model.predict(inputs, [sample])
    assert tuple(result[0].seg_logits.data.shape) == (len(CLASSES),
                                                  *ori_shape)
    assert tuple(result[0].pred_sem_seg.data.shape) == (1, *ori_shape)
