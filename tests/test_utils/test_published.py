# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Published checkpoints: what they keep, and loading them (or full ones)
strictly into a freshly built ZegOT model with tiny CLIP towers."""
import json

import pytest
import torch
from conftest import TINY_CLIP_CFG
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_zegot.models.utils import build_clip
from mmseg_zegot.utils import (
    PUBLISHED_FORMAT,
    frozen_clip_keys,
    frozen_clip_prefixes,
    load_segmentor_checkpoint,
    publish_checkpoint,
    read_checkpoint,
    save_published,
)

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky')
SEEN = ('cat', 'car', 'sky')
EXTRA_STATE = {'image_encoder._extra_state', 'text_encoder._extra_state'}


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def clip_file(tmp_path_factory):
    """The tiny CLIP's weights, as a local file."""
    path = tmp_path_factory.mktemp('clip') / 'clip.pth'
    torch.manual_seed(0)
    torch.save(build_clip('tiny', TINY_CLIP_CFG).state_dict(), path)
    return str(path)


def build(clip_cfg, pretrained, seed=1, quick_gelu=False, **head):
    """A ZegOT model with tiny towers; CLIP is not loaded (as at test)."""
    clip = dict(model_name='tiny', model_cfg=clip_cfg, pretrained=pretrained,
                quick_gelu=quick_gelu)
    torch.manual_seed(seed)
    return MODELS.build(dict(
        type='ZegOTSegmentor',
        image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                           out_indices=(0, 1), **clip),
        text_encoder=dict(type='ZegOTPromptTextEncoder', num_prompts=2,
                          prompt_length=4, **clip),
        decode_head=dict(dict(type='ZegOTHead', decoder=dict(num_layers=1)),
                         **head),
        class_names=CLASSES,
        seen_classes=SEEN,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.0] * 3,
                               std=[255.0] * 3, size=(32, 32)),
        test_cfg=dict(mode='whole')))


def trained(clip_cfg, clip_file, **head):
    """A model as after training: CLIP loaded, trainable weights moved."""
    model = build(clip_cfg, clip_file, **head)
    model.init_weights()
    torch.manual_seed(2)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn_like(param))
    return model


def training_checkpoint(model):
    """What MMEngine's runner saves (after ZegOTPlainCheckpointHook)."""
    return dict(
        meta=dict(cfg='model = dict(...)', iter=40, epoch=0, seed=0,
                  mmengine_version='0.10.7',
                  dataset_meta=dict(classes=CLASSES, zero_shot_split='toy',
                                    palette=[[1, 2, 3]] * len(CLASSES))),
        state_dict=model.state_dict(),
        optimizer=dict(state={0: dict(step=torch.tensor(40.0))},
                       param_groups=[dict(lr=1e-4)]),
        param_schedulers=[dict(last_step=40)],
        message_hub=dict(log_scalars={}))


def predict(model):
    """Seg logits of a fixed batch (5×32×32 each)."""
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, 32, 32).long())
        sample.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32),
                                 pad_shape=(32, 32)))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=gen,
                            dtype=torch.uint8) for _ in samples]
    model.eval()
    with torch.no_grad():
        results = model.test_step(dict(inputs=inputs, data_samples=samples))
    return torch.stack([result.seg_logits.data for result in results])


@pytest.fixture(scope='module')
def source(clip_file):
    """The trained model, its training checkpoint and its predictions."""
    model = trained(TINY_CLIP_CFG, clip_file)
    return model, training_checkpoint(model), predict(model)


def test_frozen_clip_keys_are_the_towers(source):
    model, _, _ = source
    assert frozen_clip_prefixes(model) == ('image_encoder.visual.',
                                           'text_encoder.clip.')
    towers = {f'image_encoder.visual.{key}'
              for key in model.image_encoder.visual.state_dict()}
    towers |= {f'text_encoder.clip.{key}'
               for key in model.text_encoder.clip.state_dict()}
    assert set(frozen_clip_keys(model)) == towers
    assert 'text_encoder.clip.token_embedding.weight' in towers


def test_frozen_clip_owners_are_matched_by_shape(source):
    """utils/published.py recognises the encoders (FrozenCLIPMixin) by their
    shape, without importing mmseg_zegot.models."""
    from mmseg_zegot.models.utils import FrozenCLIPMixin
    from mmseg_zegot.utils.published import FrozenCLIPOwner
    model, _, _ = source
    owners = [m for m in model.modules() if isinstance(m, FrozenCLIPOwner)]
    assert owners == [m for m in model.modules()
                      if isinstance(m, FrozenCLIPMixin)]
    assert owners == [model.image_encoder, model.text_encoder]
    assert not isinstance(model.decode_head, FrozenCLIPOwner)


def test_publish_keeps_trainable_weights_and_plain_metadata(source, tmp_path):
    model, checkpoint, _ = source
    published = publish_checkpoint(checkpoint, model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(published) == {'state_dict', 'meta'}
    assert set(published['state_dict']) == trainable | EXTRA_STATE
    for key in trainable:
        assert torch.equal(published['state_dict'][key],
                           checkpoint['state_dict'][key])
    meta = published['meta']
    assert meta['format'] == PUBLISHED_FORMAT
    assert meta['frozen_clip'] == dict(
        prefixes=['image_encoder.visual.', 'text_encoder.clip.'],
        included=False)
    assert meta['classes'] == list(CLASSES)
    assert meta['seen_classes'] == list(SEEN)
    assert meta['unseen_classes'] == ['dog', 'tree']
    assert meta['setting'] == 'inductive'
    assert meta['zero_shot_split'] == 'toy'
    assert meta['cfg'] == 'model = dict(...)'
    assert meta['source'] == dict(iter=40, epoch=0, seed=0)
    assert meta['versions']['torch'] == torch.__version__
    assert json.loads(json.dumps(meta)) == meta  # plain data only
    full, small = tmp_path / 'full.pth', tmp_path / 'published.pth'
    torch.save(checkpoint, full)
    save_published(published, str(small))
    assert small.stat().st_size < full.stat().st_size / 20
    assert torch.load(small, weights_only=True)['meta'] == meta


def test_frozen_dlfa_copies_are_kept(clip_file, tiny_clip_cfg):
    """Weights outside the CLIP towers stay even when they do not train:
    the CLIP file does not restore them."""
    model = trained(tiny_clip_cfg, clip_file, dlfa_projection='frozen')
    dlfa = {n for n, p in model.named_parameters()
            if n.startswith('decode_head.dlfa.')}
    assert dlfa and not any(
        p.requires_grad for n, p in model.named_parameters() if n in dlfa)
    published = publish_checkpoint(training_checkpoint(model), model)
    assert dlfa <= set(published['state_dict'])


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_published_loads_like_the_full_checkpoint(source, clip_file,
                                                  tiny_clip_cfg, tmp_path,
                                                  suffix):
    model, checkpoint, reference = source
    published = publish_checkpoint(checkpoint, model)
    path = str(tmp_path / f'published{suffix}')
    save_published(published, path)
    fresh = build(tiny_clip_cfg, clip_file, seed=5)
    meta = load_segmentor_checkpoint(fresh, path)
    assert meta == published['meta']
    expected = model.state_dict()
    loaded = fresh.state_dict()
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(loaded[key], value), key
        else:
            assert loaded[key] == value, key
    assert torch.equal(predict(fresh), reference)


def test_full_checkpoint_loads_strictly(source, tiny_clip_cfg, tmp_path):
    model, checkpoint, reference = source
    path = tmp_path / 'iter_40.pth'
    wrapped = dict(checkpoint, state_dict={
        f'module.{k}': v for k, v in checkpoint['state_dict'].items()})
    torch.save(wrapped, path)
    fresh = build(tiny_clip_cfg, None, seed=5)  # no CLIP file needed
    assert load_segmentor_checkpoint(fresh, str(path))['iter'] == 40
    assert torch.equal(predict(fresh), reference)
    del checkpoint['state_dict']['decode_head.text_align.bias']
    try:
        torch.save(checkpoint, path)
    finally:
        checkpoint['state_dict'] = model.state_dict()
    with pytest.raises(ValueError, match=r'missing keys '
                       r"\['decode_head.text_align.bias'\].*trained with"):
        load_segmentor_checkpoint(build(tiny_clip_cfg, None), str(path))


def test_safetensors_roundtrip(source, tmp_path):
    model, checkpoint, _ = source
    published = publish_checkpoint(checkpoint, model)
    # Extra states saved as Python data (not tensors) travel as JSON.
    published['state_dict']['decode_head._extra_state'] = {'version': 2}
    path = str(tmp_path / 'published.safetensors')
    save_published(published, path)
    read = read_checkpoint(path)
    assert read['meta'] == published['meta']
    assert set(read['state_dict']) == set(published['state_dict'])
    for key, value in published['state_dict'].items():
        if isinstance(value, torch.Tensor):
            assert read['state_dict'][key].dtype == value.dtype, key
            assert torch.equal(read['state_dict'][key], value), key
        else:
            assert read['state_dict'][key] == value, key


def test_keep_frozen_needs_no_clip_file(source, tiny_clip_cfg, tmp_path):
    model, checkpoint, reference = source
    published = publish_checkpoint(checkpoint, model, keep_frozen=True)
    assert set(published['state_dict']) == set(model.state_dict())
    assert published['meta']['frozen_clip']['included'] is True
    path = str(tmp_path / 'self_contained.safetensors')
    save_published(published, path)
    fresh = build(tiny_clip_cfg, None, seed=5)
    load_segmentor_checkpoint(fresh, path)
    assert torch.equal(predict(fresh), reference)


def test_missing_clip_file_is_a_clear_error(source, tiny_clip_cfg, tmp_path):
    model, checkpoint, _ = source
    path = str(tmp_path / 'published.pth')
    save_published(publish_checkpoint(checkpoint, model), path)
    with pytest.raises(ValueError) as error:
        load_segmentor_checkpoint(build(tiny_clip_cfg, None), path)
    message = str(error.value)
    assert 'published checkpoint' in message
    assert ('--cfg-options model.image_encoder.pretrained=/path/to/clip.pth '
            'model.text_encoder.pretrained=/path/to/clip.pth') in message
    assert '--keep-frozen' in message
    absent = str(tmp_path / 'absent.pth')
    with pytest.raises(ValueError, match='Loading CLIP failed') as error:
        load_segmentor_checkpoint(build(tiny_clip_cfg, absent), path)
    assert absent in str(error.value)


@pytest.mark.parametrize('tamper,match', [
    (lambda s: s.update(extra=torch.zeros(1)), r"unexpected keys \['extra'\]"),
    (lambda s: s.pop('text_encoder.contexts'),
     r"missing keys \['text_encoder.contexts'\]"),
    (lambda s: s.update({'image_encoder.visual.proj': torch.zeros(64, 32)}),
     r"frozen CLIP keys it says it omits \['image_encoder.visual.proj'\]"),
    (lambda s: s.update({'decode_head.text_align.bias': torch.zeros(3)}),
     r'shape mismatches \[.decode_head.text_align.bias: \(3,\) vs \(32,\)'),
])
def test_tampered_published_file_is_refused(source, clip_file, tiny_clip_cfg,
                                            tmp_path, tamper, match):
    model, checkpoint, _ = source
    published = publish_checkpoint(checkpoint, model)
    tamper(published['state_dict'])
    path = str(tmp_path / 'published.pth')
    save_published(published, path)
    fresh = build(tiny_clip_cfg, clip_file)
    before = {k: v.clone() for k, v in fresh.state_dict().items()
              if isinstance(v, torch.Tensor)}
    with pytest.raises(ValueError, match=match):
        load_segmentor_checkpoint(fresh, path)
    for key, value in fresh.state_dict().items():  # nothing was loaded
        if key in before:
            assert torch.equal(value, before[key]), key


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_activation_record_is_kept(source, clip_file, tiny_clip_cfg,
                                   tmp_path, suffix):
    model, checkpoint, _ = source
    path = str(tmp_path / f'published{suffix}')
    save_published(publish_checkpoint(checkpoint, model), path)
    with pytest.raises(ValueError, match='quick_gelu=False'):
        load_segmentor_checkpoint(
            build(tiny_clip_cfg, clip_file, quick_gelu=True), path)


def test_publishing_twice_or_with_another_config_is_refused(
        source, tiny_clip_cfg):
    model, checkpoint, _ = source
    with pytest.raises(ValueError, match='already published'):
        publish_checkpoint(publish_checkpoint(checkpoint, model), model)
    other = build(tiny_clip_cfg, None, decoder=dict(num_layers=2))
    with pytest.raises(ValueError, match=r'does not fit the model.*missing '
                       r"keys \['decode_head.decoder.layers.0"):
        publish_checkpoint(checkpoint, other)


@pytest.mark.parametrize('frozen', [None, {}, {'included': 'no'}])
def test_forged_published_metadata_is_a_clear_error(source, clip_file,
                                                    tiny_clip_cfg, tmp_path,
                                                    frozen):
    model, checkpoint, _ = source
    published = publish_checkpoint(checkpoint, model)
    if frozen is None:
        del published['meta']['frozen_clip']
    else:
        published['meta']['frozen_clip'] = frozen
    path = str(tmp_path / 'forged.safetensors')
    save_published(published, path)
    with pytest.raises(ValueError) as info:
        load_segmentor_checkpoint(build(tiny_clip_cfg, clip_file), path)
    assert str(info.value) == (
        f"{path} says it is a published checkpoint (meta.format="
        f"'{PUBLISHED_FORMAT}') but its metadata has no valid "
        f'frozen_clip.included (got frozen_clip={frozen!r}), so it was not '
        'written by tools/publish_checkpoint.py or was edited. Publish the '
        'training checkpoint again with tools/publish_checkpoint.py, or load '
        'the training checkpoint.')
