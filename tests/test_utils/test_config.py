# Copyright (c) mmseg_zegot contributors. All rights reserved.
from pathlib import Path

import pytest
from mmengine.config import Config

from mmseg_zegot.utils import load_config, warn_unsafe_runtime

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIGS = sorted(
    path for path in (*(REPO / 'configs').rglob('*.py'),
                      *(REPO / 'projects').glob('*/configs/**/*.py'))
    if '_base_' not in path.parts)


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


def test_config_lacking_safe_hooks_is_warned_about_not_edited():
    cfg = Config(dict(
        custom_hooks=[dict(type='EMAHook')],
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=7, max_keep_ckpts=2))))
    before = cfg.to_dict()
    warnings = warn_unsafe_runtime(cfg)
    assert cfg.to_dict() == before
    assert len(warnings) == 2
    assert warnings[0].startswith(
        '`custom_hooks` has no ZegOTPlainCheckpointHook')
    assert "dict(type='ZegOTPlainCheckpointHook')" in warnings[0]
    assert warnings[1].startswith(
        "`default_hooks.checkpoint.type` is 'CheckpointHook'")
    assert "Set it to 'ZegOTCheckpointHook'" in warnings[1]
    assert len(warn_unsafe_runtime(Config(dict()))) == 1  # no checkpoint hook


@pytest.mark.parametrize('path', SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_declare_the_safe_runtime(path):
    """What tools/train.py used to add to every config, our configs now
    declare; the tools add nothing."""
    cfg = load_config(str(path))
    assert warn_unsafe_runtime(cfg) == []
    assert 'mmseg_zegot.safe_loading' in cfg.custom_imports.imports
    hooks = [hook['type'] for hook in cfg.custom_hooks]
    assert hooks[:2] == ['ZegOTPlainCheckpointHook', 'ZegOTStartupCheckHook']
