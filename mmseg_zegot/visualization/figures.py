# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Pictures of segmentations with a legend of class names.

Shapes: H×W label maps of class indices (255 = ignored), H×W×3 RGB images.
"""
from typing import Optional, Sequence

import numpy as np

IGNORE_INDEX = 255


def class_palette(num_classes: int, seed: int = 7) -> np.ndarray:
    """Distinct RGB colours for ``num_classes`` classes, (K, 3) uint8.

    Hues evenly spaced around the colour wheel, in a fixed shuffled order so
    that neighbouring indices differ; the same for every call.
    """
    import colorsys
    order = np.random.default_rng(seed).permutation(num_classes)
    colours = [
        colorsys.hsv_to_rgb(i / num_classes, 0.75 if i % 2 else 0.95,
                            0.95 if i % 2 else 0.75) for i in order
    ]
    return (np.asarray(colours) * 255).round().astype(np.uint8)


def colourise(label: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """H×W labels -> H×W×3 colours; ignored pixels are black."""
    out = np.zeros((*label.shape, 3), np.uint8)
    valid = label != IGNORE_INDEX
    out[valid] = palette[label[valid]]
    return out


def save_segmentation_grid(path: str,
                           images: Sequence[np.ndarray],
                           columns: Sequence[Sequence[np.ndarray]],
                           column_titles: Sequence[str],
                           class_names: Sequence[str],
                           unseen: Sequence[str] = (),
                           palette: Optional[np.ndarray] = None) -> None:
    """Save a grid: one row per image, the image then one label map per
    column, and a legend of the classes that appear, unseen ones marked.

    Args:
        path (str): Where to write the PNG.
        images (Sequence[np.ndarray]): R images, H×W×3 RGB uint8.
        columns (Sequence[Sequence[np.ndarray]]): For each column, R label
            maps (H×W, class indices, 255 ignored), e.g. ground truth and
            predictions.
        column_titles (Sequence[str]): A title per label-map column.
        class_names (Sequence[str]): The K class names, in index order.
        unseen (Sequence[str]): Names to mark "(unseen)" in the legend.
        palette (np.ndarray, optional): (K, 3) colours; default
            :func:`class_palette`.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    palette = class_palette(len(class_names)) if palette is None else palette
    rows, cols = len(images), 1 + len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols + 2.2,
                                                  2.2 * rows),
                             squeeze=False)
    present = set()
    for r, image in enumerate(images):
        panels = [image] + [colourise(col[r], palette) for col in columns]
        for c, panel in enumerate(panels):
            axes[r, c].imshow(panel, interpolation='nearest')
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(
                    'image' if c == 0 else column_titles[c - 1], fontsize=10)
        for col in columns:
            present.update(int(v) for v in np.unique(col[r])
                           if v != IGNORE_INDEX)
    handles = [
        Patch(color=palette[k] / 255.0,
              label=class_names[k] + (' (unseen)' if class_names[k] in unseen
                                      else '')) for k in sorted(present)
    ]
    fig.legend(handles=handles, loc='center right', fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, 0, cols / (cols + 1.0), 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
