"""Installation script for mmseg_zegot.

The pinned, known-good environment is described by ``requirements/*.txt``
and installed by ``make test`` / ``make demo``; ``install_requires`` below only
states the ranges the code is written against.
"""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    """Read ``__version__`` from ``mmseg_zegot/version.py`` without
    importing the package (which needs torch)."""
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmseg_zegot', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmseg_zegot',
    version=get_version(),
    description='ZegOT: zero-shot semantic segmentation through optimal '
    'transport of text prompts, for mmsegmentation 1.x',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mmseg_zegot', 'mmseg_zegot.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv-lite>=2.0.0rc4,<2.2.0',
        'mmsegmentation>=1.2.0,<1.3.0',
        'open_clip_torch>=2.23',
        'numpy',
        'opencv-python',
    ],
    extras_require=dict(tests=['pytest', 'pytest-timeout', 'POT', 'ruff']),
    zip_safe=False,
)
