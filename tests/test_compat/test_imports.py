# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""``import mmseg_zegot`` makes mmseg importable on mmcv-lite, whichever is
imported first, and refuses unsupported mmcv versions clearly."""
import subprocess
import sys

import pytest

from mmseg_zegot.compat import check_mmcv_version

MMSEG_MODULES = 'import mmseg.models, mmseg.datasets, mmseg.apis, ' \
    'mmseg.visualization'


def run_python(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize('code', [
    f'import mmseg_zegot\n{MMSEG_MODULES}',
    f'import mmseg, mmseg.registry\nimport mmseg_zegot\n{MMSEG_MODULES}',
    f'import mmseg_zegot, mmseg.models\nimport mmseg_zegot\n{MMSEG_MODULES}',
])
def test_mmseg_imports_before_and_after(code):
    result = run_python(code + '\nfrom mmseg.registry import MODELS\n'
                        "assert MODELS.get('EncoderDecoder')\n"
                        "print('ok')")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith('ok')


def test_without_mmseg_zegot_mmseg_models_fails_on_mmcv_lite():
    """The trap the stand-in exists for (pitfalls item 2)."""
    result = run_python('import mmseg.models')
    assert result.returncode != 0
    assert "No module named 'mmcv._ext'" in result.stderr


@pytest.mark.parametrize('version', ['2.2.0', '2.2.1', '1.7.2'])
def test_unsupported_mmcv_is_refused_with_fix(version):
    with pytest.raises(ImportError) as info:
        check_mmcv_version(version)
    message = str(info.value)
    assert version in message and '<2.2.0' in message
    assert 'mmcv-lite==2.1.0' in message


@pytest.mark.parametrize('version', ['2.0.0rc4', '2.0.1', '2.1.0'])
def test_supported_mmcv_is_accepted(version):
    check_mmcv_version(version)


def test_import_with_mmcv_2_2_fails_with_our_message():
    result = run_python("import mmcv\nmmcv.__version__ = '2.2.0'\n"
                        'import mmseg_zegot')
    assert result.returncode != 0
    assert 'mmseg_zegot needs mmcv>=2.0.0rc4,<2.2.0' in result.stderr
