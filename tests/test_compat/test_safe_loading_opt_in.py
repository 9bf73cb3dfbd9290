# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""``import mmseg_zegot`` registers and patches nothing of MMEngine; the
opt-in :mod:`mmseg_zegot.safe_loading` (listed in our configs'
``custom_imports``, imported by our tools) installs the weights-only
loaders. Each case runs in a fresh interpreter, since the test session
itself has opted in."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Prints which loader MMEngine uses for local files, URLs and the
#: name-resolving schemes, after the code it is appended to.
REPORT = """
import json
import mmengine.runner.checkpoint as mmengine_checkpoint
from mmengine.runner import CheckpointLoader

def name(loader):
    return f'{loader.__module__}.{loader.__name__}'

schemes = CheckpointLoader._schemes
print(json.dumps(dict(
    local=name(schemes['']),
    http=name(schemes['http://']),
    https=name(schemes['https://']),
    load_from_http=name(mmengine_checkpoint.load_from_http))))
"""

MMENGINE_LOADERS = dict(
    local='mmengine.runner.checkpoint.load_from_local',
    http='mmengine.runner.checkpoint.load_from_http',
    https='mmengine.runner.checkpoint.load_from_http',
    load_from_http='mmengine.runner.checkpoint.load_from_http')
SAFE_LOADERS = dict(
    local='mmseg_zegot.safe_loading.load_from_local_weights_only',
    http='mmseg_zegot.utils.remote_checkpoint.load_from_http_weights_only',
    https='mmseg_zegot.utils.remote_checkpoint.load_from_http_weights_only',
    load_from_http=(
        'mmseg_zegot.utils.remote_checkpoint.load_from_http_weights_only'))


def loaders_after(code):
    """MMEngine's checkpoint loaders after running ``code`` in a fresh
    interpreter (in the repository root)."""
    result = subprocess.run([sys.executable, '-c', code + REPORT],
                            cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mmengine_alone_uses_its_own_loaders():
    assert loaders_after('') == MMENGINE_LOADERS


def test_import_registers_but_leaves_checkpoint_loading_alone():
    code = ('import mmseg_zegot, mmseg_zegot.utils, mmseg_zegot.engine\n'
            'from mmseg.registry import MODELS\n'
            "assert MODELS.get('ZegOTSegmentor')\n")
    assert loaders_after(code) == MMENGINE_LOADERS


def test_config_naming_only_the_package_leaves_loading_alone(tmp_path):
    config = tmp_path / 'plain.py'
    config.write_text("custom_imports = dict(imports=['mmseg_zegot'], "
                      'allow_failed_imports=False)\n')
    code = ('from mmengine.config import Config\n'
            f'Config.fromfile({str(config)!r})\n')
    assert loaders_after(code) == MMENGINE_LOADERS


def test_opt_in_module_installs_the_safe_loaders():
    assert loaders_after('import mmseg_zegot.safe_loading\n') == SAFE_LOADERS


def test_installing_twice_changes_nothing():
    code = ('from mmseg_zegot.safe_loading import install_safe_loading\n'
            'install_safe_loading()\n')
    assert loaders_after(code) == SAFE_LOADERS


def test_our_configs_opt_in_through_custom_imports():
    code = ('from mmengine.config import Config\n'
            "Config.fromfile('configs/zegot/zegot_vitb16_voc.py')\n")
    assert loaders_after(code) == SAFE_LOADERS


def test_train_and_test_tools_opt_in():
    code = ('import runpy, sys\n'
            "sys.path.insert(0, 'tools')\n"
            "runpy.run_path('tools/train.py', run_name='imported')\n")
    assert loaders_after(code) == SAFE_LOADERS
    assert loaders_after(code.replace('train.py', 'test.py')) == SAFE_LOADERS
