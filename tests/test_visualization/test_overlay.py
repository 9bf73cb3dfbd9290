# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Overlay pictures: blending, legend entries and their swatches."""
import numpy as np
import pytest

from mmseg_zegot.visualization import (
    blend_labels,
    class_palette,
    draw_legend,
    render_overlay,
)

NAMES = ('cat', 'dog', 'grass', 'sky')
WHITE = (255, 255, 255)


def image_and_label(height=24, width=32, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), np.uint8)
    label = np.zeros((height, width), np.int64)
    label[:, 8:] = 3
    label[12:, 20:] = 1
    label[0, 0] = 255  # ignored: left unpainted
    return image, label


@pytest.mark.parametrize('opacity', [0.0, 0.3, 0.5, 1.0])
def test_blend_is_the_weighted_mean_on_painted_pixels(opacity):
    image, label = image_and_label()
    palette = class_palette(len(NAMES))
    out = blend_labels(image, label, palette, opacity)
    for y, x in [(0, 0), (5, 3), (5, 10), (20, 25)]:
        k = label[y, x]
        if k == 255:
            expected = image[y, x]
        else:
            expected = np.round((1 - opacity) * image[y, x].astype(float)
                                + opacity * palette[k].astype(float))
        np.testing.assert_array_equal(out[y, x], expected)
    if opacity == 1.0:
        painted = label != 255
        np.testing.assert_array_equal(out[painted], palette[label[painted]])
    with pytest.raises(ValueError, match='opacity'):
        blend_labels(image, label, palette, 1.5)
    with pytest.raises(ValueError, match='differ in size'):
        blend_labels(image, label[:-1], palette)


def test_legend_lists_the_requested_classes_with_their_colours():
    palette = class_palette(len(NAMES))
    panel, entries = draw_legend(NAMES, [1, 3], palette)
    assert [(e.index, e.name) for e in entries] == [(1, 'dog'), (3, 'sky')]
    for entry in entries:
        x0, y0, x1, y1 = entry.box
        assert entry.colour == tuple(palette[entry.index])
        swatch = panel[y0:y1, x0:x1].reshape(-1, 3)
        assert (swatch == entry.colour).all()
        # Text is drawn right of the swatch, on the row.
        assert (panel[y0:y1, x1 + 1:] != WHITE).any()
    assert entries[0].box[3] <= entries[1].box[1]  # one row each
    empty, none = draw_legend(NAMES, [], palette)
    assert empty.shape == (0, 0, 3) and none == []
    big, big_entries = draw_legend(NAMES, [1, 3], palette, scale=3.0)
    assert big.shape[0] > 2 * panel.shape[0]
    box = big_entries[0].box
    assert box[2] - box[0] == 3 * (entries[0].box[2] - entries[0].box[0])


def test_render_overlay_layout_and_entries():
    image, label = image_and_label()
    palette = class_palette(len(NAMES))
    picture, entries = render_overlay(image, label, NAMES, opacity=0.5,
                                      unseen=['sky'])
    height, width = label.shape
    np.testing.assert_array_equal(picture[:height, :width],
                                  blend_labels(image, label, palette, 0.5))
    # Exactly the classes present (grass is not), in index order.
    assert [e.name for e in entries] == ['cat', 'dog', 'sky']
    legend = picture[:, width:]
    swatch_colours = set()
    for entry in entries:
        x0, y0, x1, y1 = entry.box
        assert x0 >= width
        assert (picture[y0:y1, x0:x1] == palette[entry.index]).all()
        swatch_colours.add(tuple(picture[(y0 + y1) // 2, (x0 + x1) // 2]))
    # The swatch column holds no other colour than white and the entries'.
    column = legend[:, entries[0].box[0] - width + 1]
    assert {tuple(c) for c in column} - {WHITE} == swatch_colours
    assert picture.shape[0] == max(height, entries[-1].box[3] + 4)
    plain, _ = render_overlay(image, label, NAMES)
    assert picture.shape[1] > plain.shape[1]  # ' (unseen)' is written
    with pytest.raises(ValueError, match='palette has 2 colours'):
        render_overlay(image, label, NAMES, palette=palette[:2])


def test_tall_images_get_a_larger_legend():
    image, label = image_and_label(height=1024, width=16)
    _, entries = render_overlay(image, label, NAMES)
    small_image, small_label = image_and_label()
    _, small_entries = render_overlay(small_image, small_label, NAMES)
    side = entries[0].box[2] - entries[0].box[0]
    small_side = small_entries[0].box[2] - small_entries[0].box[0]
    assert side == 2 * small_side
