# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""tools/demo.py and tools/test.py --show-dir, run as a user runs them, on a
tiny ZegOT (shipped VOC config) with an untrained checkpoint that carries no
dataset metadata."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_tool
from PIL import Image
from test_apis.inference_models import write_images, write_tiny_run

from mmseg_zegot.apis import ZegOTInferencer
from mmseg_zegot.datasets.splits import get_split
from mmseg_zegot.visualization import class_palette, render_overlay

VOC = get_split('voc')
CLASSES = ('sky', 'cat', 'sheep', 'grass', 'person')
WHITE = (255, 255, 255)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp('demo')
    config, checkpoint, data_root = write_tiny_run(folder, num_val=3)
    images = write_images(folder / 'images', [(40, 48), (32, 32), (48, 56)])
    return dict(config=config, checkpoint=checkpoint, images=images,
                data_root=Path(data_root), folder=folder)


def rgb(path):
    return np.asarray(Image.open(path).convert('RGB'))


def check_picture(picture, image, label, classes, opacity):
    """The overlay PNG: blended image, then a legend whose swatches are the
    palette colours of exactly the classes in ``label``."""
    height, width = label.shape
    palette = class_palette(len(classes))
    blended = np.round((1 - opacity) * image.astype(float)
                       + opacity * palette[label].astype(float))
    np.testing.assert_array_equal(picture[:height, :width], blended)
    expected, entries = render_overlay(image, label, classes, opacity=opacity)
    np.testing.assert_array_equal(picture, expected)
    present = sorted(np.unique(label).tolist())
    assert [e.name for e in entries] == [classes[k] for k in present]
    for entry in entries:
        x0, y0, x1, y1 = entry.box
        assert (picture[y0:y1, x0:x1] == palette[entry.index]).all()
    # Read back from the PNG alone: the swatch column holds the colours of
    # the present classes and nothing else.
    column = picture[:, entries[0].box[0] + 1]
    assert {tuple(c) for c in column} - {WHITE} == {
        tuple(palette[k]) for k in present}


def test_demo_writes_overlay_and_label_per_image(tiny, tmp_path):
    classes_file = tmp_path / 'classes.txt'
    classes_file.write_text('\n'.join(CLASSES[:3]) + '\n\n' +
                            '\n'.join(CLASSES[3:]) + '\n')
    out = tmp_path / 'out'
    log = run_tool('demo.py', tiny['folder'] / 'images', '--config',
                   tiny['config'], '--checkpoint', tiny['checkpoint'],
                   '--classes-file', classes_file, '--out', out,
                   '--device', 'cpu', '--opacity', '0.6')
    assert 'Segmented 3 image(s) with 5 classes' in log
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f'image_{i}_{kind}.png' for i in range(3)
        for kind in ('label', 'overlay'))
    used = set()
    for i, path in enumerate(tiny['images']):
        image = rgb(path)
        label_png = Image.open(out / f'image_{i}_label.png')
        assert label_png.mode == 'L'  # uint8
        label = np.asarray(label_png).astype(np.int64)
        assert label.shape == image.shape[:2]
        assert label.max() < len(CLASSES)
        used.update(np.unique(label).tolist())
        picture = rgb(out / f'image_{i}_overlay.png')
        check_picture(picture, image, label, CLASSES, 0.6)
    assert len(used) >= 2


def test_demo_without_classes_uses_the_config_split(tiny, tmp_path):
    """The checkpoint has no dataset_meta: no Cityscapes names leak in."""
    run_tool('demo.py', tiny['images'][0], '--config', tiny['config'],
             '--checkpoint', tiny['checkpoint'], '--out', tmp_path)
    image = rgb(tiny['images'][0])
    label = np.asarray(Image.open(tmp_path / 'image_0_label.png'))
    assert label.max() < len(VOC.classes)
    picture = rgb(tmp_path / 'image_0_overlay.png')
    check_picture(picture, image, label.astype(np.int64), VOC.classes, 0.5)
    expected = ZegOTInferencer(tiny['config'], tiny['checkpoint'],
                               device='cpu')(tiny['images'][0])[0]
    np.testing.assert_array_equal(label, expected['label'])


@pytest.mark.parametrize('options,message', [
    (['--classes', 'cat,,dog'], '--classes holds empty or non-string'),
    (['--classes', 'cat,dog,cat'], "--classes names ['cat'] more than once"),
    (['--classes', 'circle,Circle'], "--classes names [['circle', 'Circle']],"
     " which are the same text to CLIP (['circle'])"),
    (['--classes-file', 'missing.txt'], 'missing.txt'),
    (['--classes', 'cat,dog', '--classes-file', 'x.txt'], 'not allowed with'),
    (['--opacity', '2'], '--opacity must be in [0, 1]'),
])
def test_demo_rejects_bad_options_before_loading(monkeypatch, capsys,
                                                 options, message):
    monkeypatch.syspath_prepend(str(REPO / 'tools'))
    spec = importlib.util.spec_from_file_location('demo_tool',
                                                  REPO / 'tools' / 'demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(sys, 'argv', [
        'demo.py', 'image.png', '--config', 'missing.py', '--checkpoint',
        'missing.pth', *options
    ])
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_test_tool_show_dir_writes_one_overlay_per_image(tiny, tmp_path):
    show = tmp_path / 'show'
    run_tool('test.py', tiny['config'], tiny['checkpoint'], '--work-dir',
             tmp_path / 'work', '--show-dir', show)
    names = (tiny['data_root'] / 'ImageSets' / 'Segmentation' /
             'val.txt').read_text().split()
    assert sorted(p.name for p in show.iterdir()) == sorted(
        f'{name}_overlay.png' for name in names)
    inferencer = ZegOTInferencer(tiny['config'], tiny['checkpoint'],
                                 device='cpu')
    for name in names:
        path = tiny['data_root'] / 'JPEGImages' / f'{name}.jpg'
        label = inferencer(str(path))[0]['label']
        image = np.asarray(Image.open(path).convert('RGB'))
        expected, entries = render_overlay(image, label, VOC.classes,
                                           unseen=VOC.unseen)
        picture = rgb(show / f'{name}_overlay.png')
        np.testing.assert_array_equal(picture, expected)
        assert [e.name for e in entries] == [
            VOC.classes[k] for k in np.unique(label)]


def test_demo_reads_a_classes_file_with_a_byte_order_mark(monkeypatch,
                                                          tmp_path):
    """Windows editors start UTF-8 files with a BOM; it is not a name."""
    monkeypatch.syspath_prepend(str(REPO / 'tools'))
    spec = importlib.util.spec_from_file_location('demo_tool',
                                                  REPO / 'tools' / 'demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    classes = tmp_path / 'classes.txt'
    classes.write_bytes('\ufeffcircle\nsquare\n\nbig star\n'.encode())
    monkeypatch.setattr(sys, 'argv', [
        'demo.py', 'image.png', '--config', 'missing.py', '--checkpoint',
        'missing.pth', '--classes-file', str(classes)
    ])
    assert demo.parse_args().vocabulary == ('circle', 'square', 'big star')
