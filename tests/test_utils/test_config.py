# Copyright (c) mmseg_zegot contributors. All rights reserved.
import pytest
from mmengine.config import Config

from mmseg_zegot.utils import apply_safe_runtime, load_config


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


def test_safe_runtime_hooks_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    apply_safe_runtime(cfg)
    apply_safe_runtime(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'EMAHook', 'ZegOTPlainCheckpointHook', 'ZegOTStartupCheckHook'
    ]
    empty = Config(dict())
    apply_safe_runtime(empty)
    assert [h['type'] for h in empty.custom_hooks] == [
        'ZegOTPlainCheckpointHook', 'ZegOTStartupCheckHook'
    ]


def test_mmengine_checkpoint_hook_becomes_atomic_with_its_arguments():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', interval=7, max_keep_ckpts=2))))
    apply_safe_runtime(cfg)
    assert cfg.default_hooks.checkpoint == dict(
        type='ZegOTCheckpointHook', interval=7, max_keep_ckpts=2)
    # mmseg's own schedule bases get it too, through the tools
    mmseg_cfg = load_config('configs/examples/zegot_mmseg-schedule_voc.py')
    apply_safe_runtime(mmseg_cfg)
    assert mmseg_cfg.default_hooks.checkpoint.type == 'ZegOTCheckpointHook'
