# Copyright (c) mmseg_zegot contributors. All rights reserved.
import logging

import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from mmseg_zegot.models.text_encoder import ZegOTPromptTextEncoder
from mmseg_zegot.models.utils import build_clip, save_clip_weights

NAMES = ('cat', 'traffic light', 'potted plant on a window sill')


def make_encoder(cfg, **kwargs):
    kwargs.setdefault('num_prompts', 3)
    kwargs.setdefault('prompt_length', 4)
    kwargs.setdefault('vocabulary', NAMES)
    return ZegOTPromptTextEncoder(model_name='tiny', model_cfg=cfg, **kwargs)


def tokenize(names):
    """CLIP BPE tokens of ``"{name}."``, K×77 (the untruncated sequences)."""
    return open_clip.SimpleTokenizer(context_length=77)(
        [f'{name}.' for name in names])


def reference(clip, contexts, ids):
    """Prompted text embeddings from open_clip's text tower run by hand.

    Every sequence keeps the full 77 positions and the full causal mask:
    ``[SOT] ctx_n <name tokens> [EOT] <padding>``, the last L paddings dropped.

    Returns:
        Tensor: K×N×C, L2-normalised.
    """
    num_classes = ids.shape[0]
    length = contexts.shape[1]
    embedded = clip.token_embedding(ids)
    eot = ids.argmax(dim=-1) + length
    outputs = []
    for context in contexts:
        x = torch.cat([embedded[:, :1],
                       context.expand(num_classes, -1, -1),
                       embedded[:, 1:ids.shape[1] - length]], dim=1)
        x = clip.transformer(x + clip.positional_embedding,
                             attn_mask=clip.attn_mask)
        x = clip.ln_final(x)[torch.arange(num_classes), eot]
        outputs.append(F.normalize(x @ clip.text_projection, dim=-1))
    return torch.stack(outputs, dim=1)


class TransformerCalls:
    """Counts the runs of the frozen text transformer (a forward hook)."""

    def __init__(self, encoder):
        self.count = 0
        encoder.clip.transformer.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.count += 1


def test_build_from_registry_shapes_and_properties(tiny_clip_cfg):
    encoder = MODELS.build(dict(
        type='ZegOTPromptTextEncoder', model_name='tiny',
        model_cfg=tiny_clip_cfg, num_prompts=3, prompt_length=4,
        vocabulary=NAMES))
    assert isinstance(encoder, ZegOTPromptTextEncoder)
    assert (encoder.num_prompts, encoder.prompt_length) == (3, 4)
    assert (encoder.width, encoder.output_dims) == (64, 32)
    assert encoder.vocabulary == NAMES
    assert not hasattr(encoder.clip, 'visual')
    out = encoder.eval()()
    assert out.shape == (3, 3, 32)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3, 3))


def test_no_prompt_equals_open_clip_encode_text(tiny_clip_cfg):
    torch.manual_seed(0)
    encoder = make_encoder(tiny_clip_cfg, prompt_length=0).eval()
    expected = encoder.clip.encode_text(tokenize(NAMES), normalize=True)
    out = encoder()
    for n in range(encoder.num_prompts):
        torch.testing.assert_close(out[:, n], expected, rtol=0, atol=1e-5)


def test_prompts_equal_untruncated_reference(tiny_clip_cfg):
    torch.manual_seed(0)
    encoder = make_encoder(tiny_clip_cfg, prompt_length=5,
                           prompt_init_std=1.0).eval()
    # The cut keeps only up to the longest EOT, far below 77 positions.
    assert encoder.token_ids.shape[1] + 5 < 20
    expected = reference(encoder.clip, encoder.contexts, tokenize(NAMES))
    out = encoder()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # The prompts matter: N different embeddings for every class.
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-2


def test_gradients_reach_only_the_contexts(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).train()
    assert [name for name, p in encoder.named_parameters()
            if p.requires_grad] == ['contexts']
    out = encoder()
    (out * torch.randn_like(out)).sum().backward()
    assert encoder.contexts.grad is not None
    assert encoder.contexts.grad.abs().sum() > 0
    for name, param in encoder.named_parameters():
        if name != 'contexts':
            assert param.grad is None, name


def test_frozen_clip_stays_in_eval_mode(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).train()
    assert encoder.training
    assert not any(module.training for module in encoder.clip.modules())


def test_eval_cache_and_its_invalidation(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).eval()
    calls = TransformerCalls(encoder)

    first = encoder()
    assert first.grad_fn is None
    assert encoder() is first
    assert calls.count == 1

    encoder.set_vocabulary(['dog', 'cat'])
    second = encoder()
    assert calls.count == 2 and second.shape[0] == 2
    assert encoder() is second and calls.count == 2

    encoder.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(encoder(), second)
    assert calls.count == 3
    # A partial load leaves the contexts alone but still drops the cache.
    bias = encoder.clip.ln_final.bias.clone()
    encoder.load_state_dict({'clip.ln_final.bias': bias + 0.5}, strict=False)
    assert not torch.allclose(encoder(), second)
    assert calls.count == 4
    encoder.load_state_dict({'clip.ln_final.bias': bias}, strict=False)

    # An optimizer step in eval mode changes the contexts in place.
    optimizer = torch.optim.SGD([encoder.contexts], lr=1.0)
    encoder.contexts.grad = torch.ones_like(encoder.contexts)
    optimizer.step()
    stepped = encoder()
    assert calls.count == 5
    assert not torch.allclose(stepped, second)
    with torch.no_grad():
        encoder.contexts.mul_(2)
    assert encoder() is not stepped and calls.count == 6

    encoder.train()
    encoder.eval()
    encoder()
    assert calls.count == 7


def test_train_mode_never_uses_the_cache(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).eval()
    calls = TransformerCalls(encoder)
    encoder()
    encoder.train()
    first, second = encoder(), encoder()
    assert calls.count == 3
    assert first is not second and first.requires_grad
    torch.testing.assert_close(first, second)


def test_state_dict_holds_no_vocabulary(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg)
    keys = set(encoder.state_dict())
    assert 'contexts' in keys
    assert all(key in ('contexts', '_extra_state') or key.startswith('clip.')
               for key in keys)
    assert not any(key.startswith('clip.visual.') for key in keys)
    assert not any('token_ids' in key or 'eot_index' in key for key in keys)

    other = make_encoder(tiny_clip_cfg, vocabulary=['dog'])
    other.load_state_dict(encoder.state_dict())  # strict, any vocabulary
    other.set_vocabulary(NAMES)
    torch.testing.assert_close(other.eval()(), encoder.eval()())


def test_class_embedding_independent_of_vocabulary(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).eval()
    encoder.set_vocabulary(['cat', 'dog'])
    alone = encoder()
    assert alone.shape == (2, 3, 32)
    encoder.set_vocabulary(['a much longer name of a bird', 'cat'])
    among = encoder()
    assert among.shape == (2, 3, 32)
    torch.testing.assert_close(among[1], alone[0], rtol=0, atol=1e-6)


def test_long_name_is_truncated_with_warning(tiny_clip_cfg):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    long_name = 'one two three four five six seven'
    try:
        # 77 - 70 - 2 = 5 name tokens fit.
        encoder = make_encoder(tiny_clip_cfg, prompt_length=70,
                               vocabulary=['cat', long_name])
    finally:
        logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records
                if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and repr(long_name) in warnings[0]

    ids = tokenize([long_name])
    truncated = torch.cat([ids[:, :6], ids[:, 9:10]], dim=1)  # 5 + EOT
    assert int(ids[0, 9]) == encoder.tokenizer.eot_token_id
    assert encoder.token_ids[1].tolist() == truncated[0].tolist()
    assert encoder.eot_index.tolist() == [3, 6]
    padded = torch.cat([truncated, ids.new_zeros(1, 70)], dim=1)
    expected = reference(encoder.clip, encoder.contexts, padded)
    torch.testing.assert_close(encoder.eval()()[1:], expected,
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize('kwargs, key', [
    (dict(num_prompts=0), 'num_prompts'),
    (dict(prompt_length=-1), 'prompt_length'),
    (dict(prompt_length=75), 'prompt_length'),
    (dict(vocabulary=[]), 'vocabulary'),
    (dict(vocabulary='cat'), 'vocabulary'),
    (dict(vocabulary=['cat', ' ']), 'vocabulary'),
    (dict(vocabulary=['cat', 'dog', 'cat']), "'cat'"),
    (dict(init_cfg=dict(type='Normal', layer='Linear')), 'init_cfg'),
])
def test_invalid_arguments(tiny_clip_cfg, kwargs, key):
    with pytest.raises(ValueError, match=key):
        make_encoder(tiny_clip_cfg, **kwargs)


def test_longest_prompt_is_accepted(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg, prompt_length=74,
                           vocabulary=['cat'])
    assert encoder.eval()().shape == (1, 3, 32)


@pytest.mark.parametrize('text_cfg, match', [
    (dict(pool_type='first'), 'pool_type'),
    (dict(pool_type='eos', eos_id=2), 'eos_id'),
    (dict(no_causal_mask=True), 'no_causal_mask'),
])
def test_unsupported_text_towers(tiny_clip_cfg, text_cfg, match):
    tiny_clip_cfg['text_cfg'].update(text_cfg)
    with pytest.raises(ValueError, match=match):
        make_encoder(tiny_clip_cfg)


def test_eos_pooling_matches_open_clip(tiny_clip_cfg):
    tiny_clip_cfg['text_cfg'].update(pool_type='eos', eos_id=49407)
    encoder = make_encoder(tiny_clip_cfg, prompt_length=0).eval()
    expected = encoder.clip.encode_text(tokenize(NAMES), normalize=True)
    torch.testing.assert_close(encoder()[:, 0], expected, rtol=0, atol=1e-5)


def test_forward_needs_a_vocabulary(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg, vocabulary=None)
    assert encoder.vocabulary == ()
    with pytest.raises(ValueError, match='set_vocabulary'):
        encoder()


@pytest.fixture
def clip_file(tiny_clip_cfg, tmp_path):
    torch.manual_seed(1)
    state_dict = build_clip('tiny', model_cfg=tiny_clip_cfg).state_dict()
    path = tmp_path / 'tiny_clip.pth'
    save_clip_weights(state_dict, str(path), quick_gelu=False)
    return str(path), state_dict


def assert_text_weights_equal(encoder, state_dict):
    loaded = encoder.clip.state_dict()
    expected = {key: value for key, value in state_dict.items()
                if not key.startswith('visual.')}
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_init_weights_loads_the_text_tower(tiny_clip_cfg, clip_file):
    path, state_dict = clip_file
    encoder = make_encoder(tiny_clip_cfg, pretrained=path,
                           prompt_init_std=0.5).eval()
    before = encoder().clone()
    with torch.no_grad():
        encoder.contexts.zero_()
    encoder.init_weights()
    assert_text_weights_equal(encoder, state_dict)
    assert 0.3 < encoder.contexts.std() < 0.7
    assert not torch.allclose(encoder(), before)  # cache dropped
    assert not any(p.requires_grad for p in encoder.clip.parameters())


def test_parent_init_cfg_cannot_clobber_the_text_tower(tiny_clip_cfg,
                                                       clip_file):
    path, state_dict = clip_file

    class Parent(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Constant', val=0.0, layer='Linear'))
            self.text_encoder = make_encoder(tiny_clip_cfg, pretrained=path)

    parent = Parent()
    parent.init_weights()
    assert_text_weights_equal(parent.text_encoder, state_dict)
    assert parent.text_encoder.is_init


def test_init_weights_needs_pretrained(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg)
    with pytest.raises(ValueError, match='model.text_encoder.pretrained'):
        encoder.init_weights()


def test_cache_is_kept_apart_under_autocast(tiny_clip_cfg):
    encoder = make_encoder(tiny_clip_cfg).eval()
    calls = TransformerCalls(encoder)
    full = encoder()
    with torch.autocast(encoder.contexts.device.type, dtype=torch.bfloat16):
        low = encoder()
        assert encoder() is low
    assert calls.count == 2
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), full, rtol=0, atol=0.05)
    assert encoder().dtype == torch.float32 and calls.count == 3


def test_checkpoint_with_other_activation_is_refused(tiny_clip_cfg):
    """The text tower records QuickGELU in its state dict like the backbone,
    so a checkpoint never meets a build with the other activation."""
    quick = ZegOTPromptTextEncoder(model_name='tiny', model_cfg=tiny_clip_cfg,
                                   quick_gelu=True, prompt_length=2)
    gelu = ZegOTPromptTextEncoder(model_name='tiny', model_cfg=tiny_clip_cfg,
                                  quick_gelu=False, prompt_length=2)
    assert quick.state_dict()['_extra_state'].item() is True
    with pytest.raises(ValueError,
                       match=r'model\.text_encoder\.quick_gelu=True'):
        gelu.load_state_dict(quick.state_dict())


def test_template_without_context_is_clips_zero_shot_prompt(tiny_clip_cfg):
    encoder = ZegOTPromptTextEncoder(
        model_name='tiny', model_cfg=tiny_clip_cfg, num_prompts=1,
        prompt_length=0, template='a photo of a {}.',
        vocabulary=['cat', 'traffic light']).eval()
    clip = encoder.clip
    tokens = open_clip.SimpleTokenizer(context_length=77)(
        ['a photo of a cat.', 'a photo of a traffic light.'])
    reference = clip.encode_text(tokens, normalize=True)
    torch.testing.assert_close(encoder()[:, 0], reference, atol=1e-5,
                               rtol=1e-5)
    with pytest.raises(ValueError, match='template'):
        ZegOTPromptTextEncoder(model_name='tiny', model_cfg=tiny_clip_cfg,
                               template='a photo')
