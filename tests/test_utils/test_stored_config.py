# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Config text stored in a file is read as data, never executed."""
import pytest
from conftest import REPO

from mmseg_zegot.utils import (
    StoredConfigError,
    config_from_stored_text,
    load_config,
)

FIX = 'pass --config CONFIG.'


@pytest.mark.parametrize('config', [
    'projects/toy_world/configs/zegot_toy.py',
    'configs/zegot/zegot_vitb16_voc.py',
    'configs/examples/fcn_r50-d8_voc-zero-shot_closed-set.py'
])
def test_shipped_configs_round_trip(config):
    cfg = load_config(str(REPO / config))
    stored = config_from_stored_text(cfg.pretty_text, 'ckpt.pth', FIX)
    assert stored.to_dict() == cfg.to_dict()
    assert stored.pretty_text == cfg.pretty_text


@pytest.mark.parametrize('text, what', [
    ("_x = __import__('os').system('touch PWNED')",
     'line 1 has a call of "__import__(\'os\').system"'),
    ('import os', "line 1 has the statement 'import os'"),
    ("model = dict(type=open('x'))", "a call of 'open'"),
    ('a = 1\nb = os.environ', "line 2 has the expression 'os.environ'"),
    ('a = [x for x in ()]', 'the expression'),
    ("a = dict(**{'x': 1})", 'a dict(...) with arguments other than'),
    ('a = 2 ** 99999999', 'the expression'),
    ('a, b = 1, 2', 'the statement'),
    ("a = (lambda: 0)", 'the expression'),
])
def test_code_is_refused_naming_the_line(text, what):
    with pytest.raises(StoredConfigError) as info:
        config_from_stored_text(text, 'ckpt.pth', FIX)
    message = str(info.value)
    assert message.startswith('The config stored in ckpt.pth is not plain '
                              'data')
    assert what in message and message.endswith(FIX)


@pytest.mark.parametrize('type_name', [
    'subprocess.getoutput', 'os.system', 'builtins.exec', 'NotRegistered'
])
def test_unregistered_types_are_refused(type_name):
    text = (f"model = dict(type='ZegOTSegmentor', decode_head=dict("
            f"type='ZegOTHead', loss=[dict(type={type_name!r})]))")
    with pytest.raises(StoredConfigError) as info:
        config_from_stored_text(text, 'ckpt.pth', FIX)
    assert (f'model.decode_head.loss.0.type={type_name!r}, which is not a '
            "name registered in mmseg's registries") in str(info.value)


def test_data_forms_of_mmengine_are_read():
    cfg = config_from_stored_text(
        "a = dict({'x.y': 1}, z=-2.5)\nb = (None, True, {1, 2}, [])\n"
        "model = dict(type='mmseg.ZegOTSegmentor')", 'ckpt.pth', FIX)
    assert cfg.a.to_dict() == {'x.y': 1, 'z': -2.5}
    assert cfg.b == (None, True, {1, 2}, [])
