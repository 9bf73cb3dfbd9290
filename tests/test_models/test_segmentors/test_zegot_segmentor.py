# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTSegmentor with tiny open_clip towers (random weights, CPU)."""
import copy
import os.path as osp
import socket

import open_clip
import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_zegot.models.utils.zero_shot_targets import PSEUDO_LABEL

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky')
SEEN = ('sky', 'cat', 'car')  # any order; dataset order is used
BASE_CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models',
    'zegot_vit-b16.py')
TRAINABLE = ('text_encoder.contexts', 'decode_head.dlfa.',
             'decode_head.text_align.', 'decode_head.decoder.')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def model_cfg(clip_cfg, **kwargs):
    clip = dict(model_name='tiny', model_cfg=clip_cfg, quick_gelu=False)
    cfg = dict(
        type='ZegOTSegmentor',
        image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                           out_indices=(0, 1), **clip),
        text_encoder=dict(type='ZegOTPromptTextEncoder', num_prompts=4,
                          prompt_length=4, **clip),
        decode_head=dict(type='ZegOTHead', num_classes=None,
                         in_channels=None, channels=None, in_index=None),
        class_names=CLASSES,
        seen_classes=SEEN,
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[122.771, 116.746, 104.094],
            std=[68.501, 65.579, 66.632],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(32, 32)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    for key, value in kwargs.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def build(clip_cfg, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(clip_cfg, **kwargs))
    model.decode_head.init_weights()
    return model


def batch(height=32, width=32, num=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num):
        inputs.append(torch.randint(0, 256, (3, height, width),
                                    generator=gen, dtype=torch.uint8))
        sample = SegDataSample()
        label = torch.randint(0, len(CLASSES), (1, height, width),
                              generator=gen)
        label[:, :2] = 255
        sample.gt_sem_seg = PixelData(data=label)
        shape = (height, width)
        sample.set_metainfo(dict(img_shape=shape, ori_shape=shape,
                                 pad_shape=shape))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def record_text_shapes(model):
    shapes = []
    model.text_encoder.register_forward_hook(
        lambda module, args, out: shapes.append(tuple(out.shape)))
    return shapes


@pytest.mark.parametrize('dlfa', ['learned', 'frozen'])
def test_train_step_changes_exactly_the_trainable_parameters(
        tiny_clip_cfg, dlfa):
    model = build(tiny_clip_cfg,
                  decode_head=dict(dlfa_projection=dlfa))
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {
        n for n, _ in model.named_parameters() if n.startswith(TRAINABLE)
        and not (dlfa == 'frozen' and n.startswith('decode_head.dlfa.'))
    }
    assert trainable == expected
    assert any(n.startswith('decode_head.dlfa.') for n in trainable) == (
        dlfa == 'learned')
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    log_vars = model.train_step(batch(), optim)
    assert {'loss', 'decode.loss_focal', 'decode.loss_dice',
            'decode.loss_focal_ot', 'decode.loss_dice_ot',
            'decode.acc_seg'} <= set(log_vars)
    assert torch.isfinite(log_vars['loss'])
    for name, param in model.named_parameters():
        changed = not torch.equal(param, before[name])
        assert changed == (name in trainable), name


@pytest.mark.parametrize('head', [
    dict(),
    dict(decoder=None, in_index=(1, )),
])
def test_ddp_without_unused_parameters(tiny_clip_cfg, head):
    """DDP with find_unused_parameters=False raises on the second step if
    any trainable parameter got no gradient in the first."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=0, world_size=1)
    try:
        model = build(tiny_clip_cfg, decode_head=head)
        ddp = MMDistributedDataParallel(module=model,
                                        find_unused_parameters=False)
        optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
        for seed in range(2):
            log_vars = ddp.train_step(batch(seed=seed), optim)
            assert torch.isfinite(log_vars['loss'])
    finally:
        dist.destroy_process_group()


def test_vocabulary_switches_between_loss_and_predict(tiny_clip_cfg):
    model = build(tiny_clip_cfg)
    shapes = record_text_shapes(model)
    assert model.train_classes == ('cat', 'car', 'sky')
    assert model.label_map.tolist() == [0, 255, 1, 255, 2]
    assert model.decode_head.seen_mask.tolist() == [
        True, False, True, False, True]
    data = model.data_preprocessor(batch(), True)
    model.train()
    losses = model.loss(**data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.text_encoder.vocabulary == ('cat', 'car', 'sky')
    model.eval()
    with torch.no_grad():
        results = model.predict(**data)
    assert model.text_encoder.vocabulary == CLASSES
    assert results[0].seg_logits.data.shape[0] == len(CLASSES)
    model.train()
    model.loss(**data)
    assert shapes == [(3, 4, 32), (5, 4, 32), (3, 4, 32)]


def test_predict_returns_all_classes(tiny_clip_cfg):
    model = build(tiny_clip_cfg)
    model.eval()
    with torch.no_grad():
        results = model.test_step(batch(height=40, width=48, num=2))
    assert len(results) == 2
    for result in results:
        logits = result.seg_logits.data
        assert logits.shape == (len(CLASSES), 40, 48)
        pred = result.pred_sem_seg.data
        assert torch.equal(pred, logits.argmax(0, keepdim=True))
        # scores are calibrated probabilities: in [-seen_bias, 1]
        assert logits.min() >= -0.1 and logits.max() <= 1


def test_seen_bias_is_applied_to_seen_columns(tiny_clip_cfg):
    data = batch(num=1)
    outputs = []
    for bias in (0.0, 0.1):
        model = build(tiny_clip_cfg, decode_head=dict(seen_bias=bias))
        model.eval()
        with torch.no_grad():
            outputs.append(model.test_step(data)[0].seg_logits.data)
    diff = outputs[1] - outputs[0]
    seen = torch.tensor([True, False, True, False, True])
    torch.testing.assert_close(diff[seen], torch.full_like(diff[seen], -0.1))
    assert torch.equal(diff[~seen], torch.zeros_like(diff[~seen]))


def test_tensor_mode(tiny_clip_cfg):
    model = build(tiny_clip_cfg)
    model.eval()
    out = model(torch.randn(2, 3, 32, 48), mode='tensor')
    assert set(out) == {'score_logits', 'decoder_logits'}
    for value in out.values():
        assert value.shape == (2, len(CLASSES), 4, 6)


def test_slide_inference_with_all_classes(tiny_clip_cfg):
    model = build(tiny_clip_cfg,
                  test_cfg=dict(mode='slide', crop_size=(32, 32),
                                stride=(21, 21)))
    assert model.out_channels == len(CLASSES)
    model.eval()
    with torch.no_grad():
        result = model.test_step(batch(height=48, width=40, num=1))[0]
    logits = result.seg_logits.data
    assert logits.shape == (len(CLASSES), 48, 40)
    assert torch.isfinite(logits).all()
    # the overlap is averaged: the top-left corner only sees one crop
    whole = build(tiny_clip_cfg)
    whole.eval()
    image = whole.data_preprocessor(batch(height=48, width=40, num=1),
                                    False)['inputs']
    with torch.no_grad():
        crop = whole.encode_decode(
            image[:, :, :32, :32],
            [dict(img_shape=torch.Size((32, 32)), pad_shape=(32, 32))])
    torch.testing.assert_close(logits[:, :5, :5], crop[0, :, :5, :5])


def test_transductive_uses_all_classes_and_pseudo_labels(tiny_clip_cfg):
    model = build(tiny_clip_cfg, setting='transductive',
                  decode_head=dict(seen_bias=0.0))
    shapes = record_text_shapes(model)
    assert model.train_classes == CLASSES
    assert model.label_map.tolist() == [
        0, PSEUDO_LABEL, 2, PSEUDO_LABEL, 4]
    assert model.pseudo_label_columns.tolist() == [
        False, True, False, True, False]
    model.train()
    losses = model.loss(**model.data_preprocessor(batch(), True))
    assert shapes == [(len(CLASSES), 4, 32)]
    assert all(torch.isfinite(v) for v in losses.values())
    # labels already hidden by ZegOTZeroShotLabels (unseen -> 254) work too
    data = batch()
    for sample in data['data_samples']:
        label = sample.gt_sem_seg.data
        label[(label == 1) | (label == 3)] = 254
    losses = model.loss(**model.data_preprocessor(data, True))
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match='seen_bias'):
        build(tiny_clip_cfg, setting='transductive')


def test_transductive_targets_are_the_heads_unseen_argmax(tiny_clip_cfg):
    """The head receives final targets: seen labels as they are, unseen
    (or 254) pixels the argmax over the unseen columns of the head's
    detached inference probabilities, at the label size."""
    model = build(tiny_clip_cfg, setting='transductive',
                  decode_head=dict(seen_bias=0.0))
    data = model.data_preprocessor(batch(), True)
    samples = data['data_samples']
    samples[0].gt_sem_seg.data[0, :3, :3] = 254
    samples[0].gt_sem_seg.data[0, 3, :3] = 255
    text = model._text_embeddings(model.train_classes)
    seg_logits = model.decode_head(
        [data['inputs'], model.extract_feat(data['inputs']), text])
    targets = model.training_targets(samples, seg_logits)
    gt = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    got = torch.stack([s.gt_sem_seg.data[0] for s in targets])
    assert got.dtype == torch.long
    assert targets[0].metainfo == samples[0].metainfo
    head = model.decode_head
    prob = head.probabilities(head.upsample(seg_logits, gt.shape[-2:]))
    prob[:, [0, 2, 4]] = -1.0
    hidden = (gt == 1) | (gt == 3) | (gt == 254)
    assert hidden.any() and (gt == 255).any()
    assert torch.equal(got[hidden], prob.argmax(1)[hidden])
    assert torch.equal(got[~hidden], gt[~hidden].long())
    # inductive: the same pixels are ignored, seen labels become columns
    model = build(tiny_clip_cfg)
    targets = model.training_targets(samples, seg_logits)
    got = torch.stack([s.gt_sem_seg.data[0] for s in targets])
    column = torch.tensor([0, 255, 1, 255, 2])
    assert torch.equal(got[hidden], torch.full_like(got[hidden], 255))
    seen = ~hidden & (gt != 255)
    assert torch.equal(got[seen], column[gt[seen].long()])


def test_unlabeled_index_of_earlier_configs_is_read(tiny_clip_cfg,
                                                     log_messages):
    """Configs stored in earlier checkpoints set decode_head.unlabeled_index
    (publish_checkpoint.py builds from them): it is model.unlabeled_index."""
    model = build(tiny_clip_cfg, decode_head=dict(unlabeled_index=200))
    assert model.unlabeled_index == 200
    assert any('model.unlabeled_index' in m for m in log_messages)
    assert build(tiny_clip_cfg).unlabeled_index == 254


def test_fully_supervised_uses_every_label(tiny_clip_cfg):
    model = build(tiny_clip_cfg, setting='fully',
                  decode_head=dict(seen_bias=0.0))
    assert model.train_classes == CLASSES
    assert model.label_map.tolist() == [0, 1, 2, 3, 4]
    assert model.pseudo_label_columns is None


def test_head_dimensions_are_filled_from_the_encoders(tiny_clip_cfg):
    model = build(tiny_clip_cfg, seen_classes=None)
    head = model.decode_head
    assert head.in_channels == [64, 64] and head.channels == 32
    assert head.in_index == [0, 1] and head.num_classes == len(CLASSES)
    assert model.seen_classes == CLASSES
    assert model.train_classes == CLASSES


@pytest.mark.parametrize('kwargs, key', [
    (dict(seen_classes=('cat', 'horse')), 'seen_classes'),
    (dict(seen_classes=('cat', 'cat')), 'seen_classes'),
    (dict(seen_classes=()), 'seen_classes'),
    (dict(class_names=('cat', 'dog', 'cat')), 'class_names'),
    (dict(class_names=()), 'class_names'),
    (dict(class_names='cat'), 'class_names'),
    (dict(setting='semi'), 'setting'),
    (dict(unlabeled_index=3), 'unlabeled_index'),
    (dict(unlabeled_index=255), 'unlabeled_index'),
    (dict(decode_head=dict(num_classes=4)), 'decode_head.num_classes'),
    (dict(decode_head=dict(in_channels=32)), 'decode_head.in_channels'),
    (dict(decode_head=dict(channels=64)), 'decode_head.channels'),
    (dict(decode_head=dict(in_index=(0, 2))), 'decode_head.in_index'),
    (dict(init_cfg=dict(type='Pretrained', checkpoint='x.pth')),
     'init_cfg'),
    (dict(test_cfg=dict(mode='sliding')), 'test_cfg.mode'),
    (dict(test_cfg=dict(mode='slide', crop_size=(32, 32))), 'test_cfg'),
])
def test_invalid_config_raises_naming_the_key(tiny_clip_cfg, kwargs, key):
    with pytest.raises(ValueError, match=key):
        build(tiny_clip_cfg, **kwargs)


def test_init_weights_copies_clip_projection_once(tiny_clip_cfg, tmp_path):
    clip = open_clip.CLIP(**copy.deepcopy(tiny_clip_cfg))
    path = str(tmp_path / 'tiny_clip.pth')
    torch.save(clip.state_dict(), path)
    model = build(tiny_clip_cfg,
                  image_encoder=dict(pretrained=path),
                  text_encoder=dict(pretrained=path))
    model.init_weights()
    visual = model.image_encoder.visual
    torch.testing.assert_close(visual.proj, clip.visual.proj)
    for norm, linear in model.decode_head.dlfa:
        torch.testing.assert_close(norm.weight, clip.visual.ln_post.weight)
        torch.testing.assert_close(norm.bias, clip.visual.ln_post.bias)
        torch.testing.assert_close(linear.weight, clip.visual.proj.t())
    # a second call never overwrites trained projections
    with torch.no_grad():
        model.decode_head.dlfa[0][1].weight.add_(1.0)
    trained = model.decode_head.dlfa[0][1].weight.clone()
    model.init_weights()
    torch.testing.assert_close(model.decode_head.dlfa[0][1].weight, trained)


def test_base_config_parses_and_builds(tiny_clip_cfg):
    cfg = Config.fromfile(BASE_CONFIG)
    model = cfg.model
    assert model.type == 'ZegOTSegmentor' and model.setting == 'inductive'
    # The split comes from each leaf config (`zero_shot_split`).
    assert not {'class_names', 'seen_classes', 'zero_shot_split'} & set(model)
    assert model.image_encoder.model_name == 'ViT-B-16'
    assert model.image_encoder.quick_gelu is True
    assert model.image_encoder.out_indices == (5, 7, 9, 11)
    head = model.decode_head
    assert (head.ot_epsilon, head.ot_iters, head.ot_grad) == (0.05, 50,
                                                               'detach')
    assert head.decoder == dict(num_layers=3, num_heads=8, ffn_ratio=4,
                                dropout=0.1)
    assert [loss.loss_weight for loss in head.loss_decode + head.loss_ot
            ] == [100.0, 1.0, 100.0, 1.0]
    assert (head.ensemble_weight, head.seen_bias) == (0.5, 0.1)
    assert model.test_cfg == dict(mode='slide', crop_size=(512, 512),
                                  stride=(341, 341))
    preprocessor = model.data_preprocessor
    assert preprocessor.mean == [122.771, 116.746, 104.094]
    assert preprocessor.std == [68.501, 65.579, 66.632]
    # the same config with a tiny CLIP builds and predicts
    tiny = dict(model_name='tiny', model_cfg=tiny_clip_cfg, quick_gelu=False,
                pretrained=None)
    model.image_encoder.update(tiny, out_indices=(0, 1))
    model.text_encoder.update(tiny, prompt_length=4)
    model.update(class_names=CLASSES, seen_classes=SEEN)
    model.test_cfg = dict(mode='slide', crop_size=(32, 32), stride=(21, 21))
    segmentor = MODELS.build(model)
    segmentor.eval()
    with torch.no_grad():
        result = segmentor.test_step(batch(height=48, width=40, num=1))[0]
    assert result.seg_logits.data.shape == (len(CLASSES), 48, 40)


def test_zero_shot_split_gives_the_vocabularies(tiny_clip_cfg):
    """The segmentor reads the same split the datasets and metric read."""
    from mmseg_zegot.datasets.splits import get_split
    cfg = model_cfg(tiny_clip_cfg, zero_shot_split='voc')
    cfg.pop('class_names')
    cfg.pop('seen_classes')
    model = MODELS.build(cfg)
    split = get_split('voc')
    assert model.class_names == split.classes
    assert model.seen_classes == split.seen and len(split.seen) == 15
    custom = dict(classes=CLASSES, unseen_classes=['dog', 'tree'])
    cfg['zero_shot_split'] = custom
    model = MODELS.build(cfg)
    assert model.seen_classes == ('cat', 'car', 'sky')
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(model_cfg(tiny_clip_cfg, zero_shot_split='voc'))
    cfg['zero_shot_split'] = dict(unseen_classes=['dog'])
    with pytest.raises(ValueError, match='zero_shot_split'):
        MODELS.build(cfg)


def test_mmseg_init_model_builds_it(tiny_clip_cfg):
    """mmseg.apis.init_model sets model.pretrained=None; anything else is
    refused with the keys to use instead."""
    MODELS.build(model_cfg(tiny_clip_cfg, pretrained=None))
    with pytest.raises(ValueError, match='image_encoder.pretrained'):
        MODELS.build(model_cfg(tiny_clip_cfg, pretrained='clip.pth'))
