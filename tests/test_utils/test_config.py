# Copyright (c) mmseg_zegot contributors. All rights reserved.
import pytest
from mmengine.config import Config

from mmseg_zegot.utils import ensure_plain_checkpoints, load_config


def test_custom_import_failure_names_the_real_cause(tmp_path, monkeypatch):
    package = tmp_path / 'broken_plugin'
    package.mkdir()
    (package / '__init__.py').write_text('import not_a_real_dependency_xyz\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / 'cfg.py'
    config.write_text(
        "custom_imports = dict(imports=['broken_plugin'], "
        'allow_failed_imports=False)\n')
    with pytest.raises(ImportError) as info:
        load_config(str(config))
    message = str(info.value)
    assert message.startswith(f'Loading {config} failed')
    assert "No module named 'not_a_real_dependency_xyz'" in message


def test_plain_checkpoint_hook_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    ensure_plain_checkpoints(cfg)
    ensure_plain_checkpoints(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'EMAHook', 'ZegOTPlainCheckpointHook'
    ]
    empty = Config(dict())
    ensure_plain_checkpoints(empty)
    assert [h['type'] for h in empty.custom_hooks] == [
        'ZegOTPlainCheckpointHook'
    ]
