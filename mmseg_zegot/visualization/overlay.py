# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Prediction pictures: an image blended with its coloured label map, next to
a legend of the classes present.

Shapes: H×W label maps of class indices into the K class names (any other
value, e.g. 255 in ground truth, is left unpainted), H×W×3 RGB uint8
images, (K, 3) RGB uint8 palettes.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from .figures import class_palette

#: Legend layout, in pixels (the font is cv2's Hershey simplex).
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
MARGIN = 4
SWATCH = 12
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)
#: Images taller than this get a proportionally larger legend.
LEGEND_HEIGHT = 512


class LegendEntry(NamedTuple):
    """One class of a legend.

    Attributes:
        index (int): The class index in the label map.
        name (str): The class name.
        colour (tuple[int, int, int]): Its RGB palette colour.
        box (tuple[int, int, int, int]): ``(x0, y0, x1, y1)`` of its colour
            swatch in the picture (``x1``, ``y1`` exclusive).
    """
    index: int
    name: str
    colour: Tuple[int, int, int]
    box: Tuple[int, int, int, int]


def present_classes(label: np.ndarray, num_classes: int) -> List[int]:
    """The class indices in ``[0, num_classes)`` that ``label`` holds, in
    increasing order."""
    values = np.unique(label)
    return [int(v) for v in values if 0 <= v < num_classes]


def blend_labels(image: np.ndarray, label: np.ndarray, palette: np.ndarray,
                 opacity: float = 0.5) -> np.ndarray:
    """Paint the label map over the image.

    Args:
        image (np.ndarray): H×W×3 RGB uint8.
        label (np.ndarray): H×W class indices; values outside
            ``[0, len(palette))`` are not painted.
        palette (np.ndarray): (K, 3) RGB uint8 colours.
        opacity (float): Weight of the colour, in [0, 1].

    Returns:
        np.ndarray: H×W×3 RGB uint8, ``round((1 - a)·image + a·colour)`` on
        painted pixels, the image elsewhere.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f'opacity must be in [0, 1], got {opacity}')
    if image.shape[:2] != label.shape:
        raise ValueError(f'The label map ({label.shape}) and the image '
                         f'({image.shape[:2]}) differ in size')
    palette = np.asarray(palette, np.uint8)
    painted = (label >= 0) & (label < len(palette))
    out = image.copy()
    colours = palette[label[painted]].astype(np.float64)
    blended = (1.0 - opacity) * image[painted] + opacity * colours
    out[painted] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def draw_legend(class_names: Sequence[str], indices: Sequence[int],
                palette: np.ndarray,
                suffixes: Optional[Sequence[str]] = None,
                scale: float = 1.0) -> Tuple[np.ndarray, List[LegendEntry]]:
    """A white panel listing classes, one row each: colour swatch, name.

    Args:
        class_names (Sequence[str]): The K class names.
        indices (Sequence[int]): The classes to list, in order.
        palette (np.ndarray): (K, 3) RGB uint8 colours.
        suffixes (Sequence[str], optional): Text written after each listed
            name (e.g. ``' (unseen)'``), aligned with ``indices``.
        scale (float): Size of text, swatches and margins relative to the
            defaults (:data:`FONT_SCALE`, :data:`SWATCH`, :data:`MARGIN`).

    Returns:
        tuple[np.ndarray, list[LegendEntry]]: The panel (RGB uint8; 0×0
        when ``indices`` is empty) and its entries, boxes in panel
        coordinates.
    """
    suffixes = [''] * len(indices) if suffixes is None else list(suffixes)
    texts = [class_names[k] + suffix for k, suffix in zip(indices, suffixes)]
    if not texts:
        return np.zeros((0, 0, 3), np.uint8), []
    margin, swatch = round(MARGIN * scale), round(SWATCH * scale)
    font_scale, thickness = FONT_SCALE * scale, max(1, round(scale))
    sizes = [cv2.getTextSize(text, FONT, font_scale, thickness)[0]
             for text in texts]
    row = max(swatch, max(h for _, h in sizes)) + margin
    width = 3 * margin + swatch + max(w for w, _ in sizes)
    panel = np.full((margin + row * len(texts), width, 3), BACKGROUND,
                    np.uint8)
    entries = []
    for i, (k, text) in enumerate(zip(indices, texts)):
        y0 = margin + i * row
        box = (margin, y0, margin + swatch, y0 + swatch)
        colour = tuple(int(c) for c in palette[k])
        panel[box[1]:box[3], box[0]:box[2]] = colour
        baseline = y0 + (swatch + sizes[i][1]) // 2
        cv2.putText(panel, text, (box[2] + margin, baseline), FONT,
                    font_scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
        entries.append(LegendEntry(int(k), class_names[k], colour, box))
    return panel, entries


def render_overlay(image: np.ndarray,
                   label: np.ndarray,
                   class_names: Sequence[str],
                   palette: Optional[np.ndarray] = None,
                   opacity: float = 0.5,
                   unseen: Sequence[str] = ()
                   ) -> Tuple[np.ndarray, List[LegendEntry]]:
    """The prediction picture: the blended image (top left, at its size) and
    to its right the legend of the classes present in ``label``, drawn
    larger for images over 512 px high (scale ``H / 512``).

    Args:
        image (np.ndarray): H×W×3 RGB uint8.
        label (np.ndarray): H×W class indices into ``class_names``.
        class_names (Sequence[str]): The K class names.
        palette (np.ndarray, optional): (K, 3) RGB uint8; default
            :func:`~mmseg_zegot.visualization.class_palette` of K.
        opacity (float): Weight of the label colours, in [0, 1].
        unseen (Sequence[str]): Names marked ``(unseen)`` in the legend.

    Returns:
        tuple[np.ndarray, list[LegendEntry]]: The picture, RGB uint8 of
        height ``max(H, legend height)`` and width ``W + legend width``
        (white where neither is drawn), and the legend entries, in class
        index order, with swatch boxes in picture coordinates.
    """
    if palette is None:
        palette = class_palette(len(class_names))
    if len(palette) < len(class_names):
        raise ValueError(f'The palette has {len(palette)} colours for '
                         f'{len(class_names)} classes')
    blended = blend_labels(image, label, palette, opacity)
    indices = present_classes(label, len(class_names))
    unseen = set(unseen)
    suffixes = [' (unseen)' if class_names[k] in unseen else ''
                for k in indices]
    height, width = blended.shape[:2]
    panel, entries = draw_legend(class_names, indices, palette, suffixes,
                                 scale=max(1.0, height / LEGEND_HEIGHT))
    canvas = np.full((max(height, panel.shape[0]), width + panel.shape[1], 3),
                     BACKGROUND, np.uint8)
    canvas[:height, :width] = blended
    canvas[:panel.shape[0], width:] = panel
    entries = [
        entry._replace(box=(entry.box[0] + width, entry.box[1],
                            entry.box[2] + width, entry.box[3]))
        for entry in entries
    ]
    return canvas, entries
