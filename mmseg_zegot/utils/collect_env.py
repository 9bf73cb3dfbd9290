# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Environment report: versions of the stack and known-bad combinations."""
import importlib
import importlib.metadata
import platform
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

from mmengine.utils import digit_version

#: (package, minimum, maximum-exclusive) ranges known to work together.
SUPPORTED = OrderedDict(
    torch=('2.1.0', None),
    mmengine=('0.10.0', '1.0.0'),
    mmcv=('2.0.0rc4', '2.2.0'),
    mmsegmentation=('1.2.0', '1.3.0'),
    open_clip_torch=('2.23.0', None),
)


def _distribution_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_env() -> Dict[str, str]:
    """Versions of Python, torch/CUDA, mmcv (compiled ops or fallback),
    mmengine, mmseg, open_clip and numpy, as printable strings."""
    import torch

    from mmseg_zegot.compat.mmcv_ops import compiled_ops_available
    from mmseg_zegot.version import __version__

    env = OrderedDict()
    env['sys.platform'] = sys.platform
    env['Python'] = sys.version.replace('\n', '')
    env['machine'] = platform.machine()
    env['PyTorch'] = torch.__version__
    env['CUDA (torch build)'] = str(torch.version.cuda)
    env['CUDA available'] = str(torch.cuda.is_available())
    if torch.cuda.is_available():
        env['GPU'] = ', '.join(
            torch.cuda.get_device_name(i)
            for i in range(torch.cuda.device_count()))
    env['TorchVision'] = _import_version('torchvision')
    mmcv_version = _import_version('mmcv')
    kind = 'compiled ops' if compiled_ops_available() else (
        'no compiled ops: mmseg_zegot pure-PyTorch fallback for mmcv.ops')
    env['MMCV'] = f'{mmcv_version} ({kind})'
    env['MMEngine'] = _import_version('mmengine')
    env['MMSegmentation'] = _import_version('mmseg')
    env['open_clip'] = _import_version('open_clip')
    env['NumPy'] = _import_version('numpy')
    env['OpenCV'] = _import_version('cv2')
    env['mmseg_zegot'] = __version__
    return env


def _import_version(module: str) -> str:
    try:
        return importlib.import_module(module).__version__
    except Exception as error:  # report, never crash the report
        return f'unavailable ({type(error).__name__}: {error})'


def known_problems(versions: Dict[str, Optional[str]]) -> List[str]:
    """Warnings for version combinations known to fail.

    Args:
        versions (dict): Distribution name -> installed version (or None),
            for the names in :data:`SUPPORTED` plus ``torchvision``.

    Returns:
        list[str]: One message per problem, each with its fix.
    """
    problems = []
    for name, (low, high) in SUPPORTED.items():
        version = versions.get(name)
        if version is None:
            continue
        if digit_version(version) < digit_version(low) or (
                high is not None
                and digit_version(version) >= digit_version(high)):
            wanted = f'>={low}' + (f',<{high}' if high else '')
            problems.append(
                f'{name} {version} is outside the supported range {wanted}; '
                'install the pinned set with `make test` (see '
                'requirements/constraints.txt).')
    torch_version = versions.get('torch')
    if torch_version and versions.get('torchvision') is None:
        problems.append(
            'torchvision is not installed but open_clip imports it; install '
            'the torchvision matching torch (torch 2.14.1 <-> torchvision '
            '0.29.1), from the default PyPI builds.')
    if torch_version and '+cpu' in torch_version and versions.get(
            'torchvision'):
        problems.append(
            f'torch {torch_version} is a CPU-only build; no matching CPU '
            'torchvision build is published, so open_clip may fail to '
            'import. Use the default PyPI torch/torchvision builds, which '
            'also run on CPU-only machines.')
    return problems


def installed_versions() -> Dict[str, Optional[str]]:
    """Installed versions of the distributions :func:`known_problems` reads."""
    names = list(SUPPORTED) + ['torchvision', 'mmcv-lite']
    versions = {name: _distribution_version(name) for name in names}
    if versions['mmcv'] is None:
        versions['mmcv'] = versions.pop('mmcv-lite')
    else:
        versions.pop('mmcv-lite')
    return versions
