# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A procedural toy world for zero-shot segmentation, in PASCAL VOC's format.

Every category is a *shape* drawn with a characteristic *texture* (stripes,
dots, checks, ...) in two random colours, so colour never identifies a class
while appearance does, even in an 8×8 patch. Images show 1-3 objects over a
smooth random background; later objects occlude earlier ones and the labels
are drawn in the same order, so they match the image.

Labels follow VOC: 0 is background, ``k`` (1..K) the k-th category of the
world's class list, and 255 a one-pixel band along every object's outline (on
the object's side, between touching objects too). Read with
``reduce_zero_label=True`` the background is ignored, exactly as in the VOC
zero-shot benchmark, and the class list is :data:`CLASS_NAMES` (no
'background').

Everything is deterministic: each image is drawn from its own
``numpy.random.Generator`` seeded with ``(seed, stream, index)``, so a val
image does not depend on ``num_train``, and images and labels are written as
PNGs with fixed encoder settings (no JPEG, no timestamps). Only float
operations that IEEE 754 rounds exactly are used on arrays (``+ - * /``,
``sqrt``, comparisons); the few sines and cosines are Python scalars.

Folder layout written by :func:`generate_world` (``img_suffix='.png'``,
``seg_map_suffix='.png'``)::

    out_dir/
        JPEGImages/{name}.png            # RGB images (PNG despite the folder)
        SegmentationClass/{name}.png     # 8-bit single-channel labels
        ImageSets/Segmentation/train.txt
        ImageSets/Segmentation/val.txt
        world.json                       # classes, size, counts, seed, ...

Seen/unseen splits are not part of the world: they are class *names* given
to the configs; :func:`choose_unseen` picks a seed-determined set.
"""
import json
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'CATEGORIES', 'CLASS_NAMES', 'STREAMS', 'ToyCategory', 'ToyObject',
    'choose_unseen', 'generate_world', 'get_categories', 'image_rng',
    'render_image', 'sample_scene', 'sample_single', 'write_png'
]

#: Format version of the generated world, recorded in ``world.json``. Bump it
#: whenever a change to this module changes the generated pixels.
WORLD_VERSION = 1

#: Default image size (height, width).
DEFAULT_SIZE = (64, 64)

#: Independent random streams: a world's train and val images and the toy
#: CLIP's pretraining pairs never share a generator, whatever the seeds.
STREAMS = {'train': 0, 'val': 1, 'clip': 2, 'clip_eval': 3}

#: PNG encoder settings, fixed so that the bytes are reproducible.
PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 6, cv2.IMWRITE_PNG_STRATEGY,
              cv2.IMWRITE_PNG_STRATEGY_DEFAULT)


@dataclass(frozen=True)
class ToyCategory:
    """A visual category: a shape drawn with a texture.

    Args:
        name (str): Its class name, one common English word (a single token
            of CLIP's BPE vocabulary).
        shape (str): Key of the shape (see :func:`shape_mask`).
        texture (str): Key of the texture (see :func:`texture_pattern`).
        max_rotation (float): Largest rotation in degrees either way.
    """
    name: str
    shape: str
    texture: str
    max_rotation: float = 180.0


#: The categories, in dataset (label index 1..K) order.
CATEGORIES: Tuple[ToyCategory, ...] = (
    ToyCategory('circle', 'circle', 'solid'),
    ToyCategory('square', 'square', 'checker', max_rotation=20.0),
    ToyCategory('triangle', 'triangle', 'hstripes'),
    ToyCategory('star', 'star', 'dots'),
    ToyCategory('cross', 'cross', 'vstripes', max_rotation=20.0),
    ToyCategory('ring', 'ring', 'diag_up'),
    ToyCategory('heart', 'heart', 'chevron', max_rotation=30.0),
    ToyCategory('moon', 'moon', 'grid'),
    ToyCategory('diamond', 'diamond', 'crosshatch', max_rotation=20.0),
    ToyCategory('pentagon', 'pentagon', 'speckle'),
    ToyCategory('cloud', 'cloud', 'zigzag', max_rotation=20.0),
    ToyCategory('flower', 'flower', 'rings'),
)

#: Class names in dataset order (label ``k`` is ``CLASS_NAMES[k - 1]``).
CLASS_NAMES: Tuple[str, ...] = tuple(c.name for c in CATEGORIES)

_BY_NAME = {c.name: c for c in CATEGORIES}


@dataclass(frozen=True)
class ToyObject:
    """One drawn object.

    Args:
        label (int): Its label value, 1..K in the image's class list.
        name (str): Its class name.
        center (tuple[float, float]): (y, x) in pixels.
        radius (float): Circumradius in pixels.
        angle (float): Rotation in degrees.
        visible (int): Pixels of it left visible (outline band included).
        area (int): Pixels it covers on its own (inside the image).
        colours (tuple): Its RGB colours as int triples: the base colour,
            then the pattern colour unless the texture is ``'solid'``.
    """
    label: int
    name: str
    center: Tuple[float, float]
    radius: float
    angle: float
    visible: int
    area: int
    colours: Tuple[Tuple[int, int, int], ...] = ()


def get_categories(names: Optional[Sequence[str]] = None
                   ) -> Tuple[ToyCategory, ...]:
    """The categories named (in the order given), or all of them.

    Raises:
        ValueError: For unknown or repeated names, or an empty list.
    """
    if names is None:
        return CATEGORIES
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f'categories must be distinct names among {list(CLASS_NAMES)}, '
            f'got {names!r}' + (f' (unknown: {unknown})' if unknown else ''))
    return tuple(_BY_NAME[n] for n in names)


def choose_unseen(class_names: Sequence[str], num_unseen: int,
                  seed: int = 0) -> List[str]:
    """Pick ``num_unseen`` classes at random, reproducibly from ``seed``.

    Args:
        class_names (Sequence[str]): All classes, in dataset order.
        num_unseen (int): How many to pick; at least one class stays seen.
        seed (int): The seed. Default: 0.

    Returns:
        list[str]: The unseen class names, in dataset order.
    """
    class_names = list(class_names)
    if not 0 <= num_unseen < len(class_names):
        raise ValueError(f'num_unseen must be in [0, {len(class_names)}) for '
                         f'{len(class_names)} classes, got {num_unseen}.')
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EE17]))
    picked = set(rng.choice(len(class_names), num_unseen, replace=False))
    return [name for i, name in enumerate(class_names) if i in picked]


def image_rng(seed: int, stream: Union[str, int],
              index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``stream`` (see :data:`STREAMS`)."""
    stream = STREAMS[stream] if isinstance(stream, str) else int(stream)
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), stream, int(index)]))


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------
def _grid(size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    return yy, xx


def shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray,
               center: Tuple[float, float], radius: float,
               angle: float) -> np.ndarray:
    """Boolean mask of a shape with circumradius ``radius``.

    The shape is defined in rotated, radius-normalised coordinates (u, v),
    u to the right and v downwards, in [-1, 1].
    """
    theta = math.radians(angle)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    dy = (yy + 0.5 - center[0]) / radius
    dx = (xx + 0.5 - center[1]) / radius
    u = dx * cos_t + dy * sin_t
    v = dy * cos_t - dx * sin_t
    r2 = u * u + v * v
    if shape == 'circle':
        return r2 <= 1.0
    if shape == 'ring':
        return (r2 <= 1.0) & (r2 >= 0.5 * 0.5)
    if shape == 'square':
        return (np.abs(u) <= 0.75) & (np.abs(v) <= 0.75)
    if shape == 'diamond':
        return np.abs(u) / 0.62 + np.abs(v) <= 1.0
    if shape == 'cross':
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.34) & (av <= 1.0)) | ((av <= 0.34) & (au <= 1.0))
    if shape == 'triangle':
        return _regular_polygon(u, v, 3)
    if shape == 'pentagon':
        return _regular_polygon(u, v, 5)
    if shape == 'star':
        return _star(u, v, points=5, inner=0.42)
    if shape == 'heart':
        x = u * 1.18
        y = -v * 1.18 + 0.18
        t = x * x + y * y - 1.0
        return t * t * t - x * x * y * y * y <= 0.0
    if shape == 'moon':
        cu, cv = u - 0.48, v + 0.12
        return (r2 <= 1.0) & (cu * cu + cv * cv >= 0.78 * 0.78)
    if shape == 'cloud':
        mask = np.zeros(u.shape, bool)
        for cu, cv, rad in ((0.0, -0.2, 0.55), (-0.52, 0.1, 0.42),
                            (0.52, 0.08, 0.45), (-0.2, 0.3, 0.42),
                            (0.22, 0.32, 0.4)):
            du, dv = u - cu, v - cv
            mask |= du * du + dv * dv <= rad * rad
        return mask & (v <= 0.58)
    if shape == 'flower':
        mask = r2 <= 0.42 * 0.42
        for k in range(6):
            phi = 2.0 * math.pi * k / 6.0
            du, dv = u - 0.62 * math.cos(phi), v - 0.62 * math.sin(phi)
            mask |= du * du + dv * dv <= 0.36 * 0.36
        return mask
    raise ValueError(f'Unknown shape {shape!r}.')


def _regular_polygon(u: np.ndarray, v: np.ndarray, sides: int) -> np.ndarray:
    """Regular polygon with circumradius 1 and a vertex pointing up."""
    apothem = math.cos(math.pi / sides)
    mask = np.ones(u.shape, bool)
    for k in range(sides):
        # Outward normal of edge k; a vertex is at angle -90° (up).
        phi = -math.pi / 2.0 + math.pi / sides + 2.0 * math.pi * k / sides
        mask &= u * math.cos(phi) + v * math.sin(phi) <= apothem
    return mask


def _star(u: np.ndarray, v: np.ndarray, points: int,
          inner: float) -> np.ndarray:
    """A star: the union of ``points`` triangles (tip + two inner vertices)."""
    mask = _regular_polygon(u / inner, v / inner, points)
    for k in range(points):
        tip = -math.pi / 2.0 + 2.0 * math.pi * k / points
        left, right = tip - math.pi / points, tip + math.pi / points
        corners = ((math.cos(tip), math.sin(tip)),
                   (inner * math.cos(right), inner * math.sin(right)),
                   (0.0, 0.0), (inner * math.cos(left),
                                inner * math.sin(left)))
        mask |= _convex(u, v, corners)
    return mask


def _convex(u: np.ndarray, v: np.ndarray,
            corners: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Inside of a convex polygon whose corners run clockwise on screen."""
    mask = np.ones(u.shape, bool)
    for (u0, v0), (u1, v1) in zip(corners, corners[1:] + corners[:1]):
        mask &= (u1 - u0) * (v - v0) - (v1 - v0) * (u - u0) >= 0.0
    return mask


def texture_pattern(texture: str, yy: np.ndarray, xx: np.ndarray,
                    center: Tuple[float, float],
                    rng: np.random.Generator) -> np.ndarray:
    """Boolean pattern of a texture (True: the second colour).

    Textures live in image coordinates (they do not rotate with the shape)
    with a random phase, and have periods of 4-8 pixels, so one 8×8 patch
    shows the texture. A horizontal flip (the configs' ``RandomFlip``) maps
    every texture onto itself up to phase or onto no other category's
    texture (``diag_up`` becomes an unused down-diagonal), so the flipped
    training images never show one category in another's texture.
    """
    oy, ox = (int(o) for o in rng.integers(0, 24, size=2))
    y, x = yy + oy, xx + ox
    if texture == 'solid':
        return np.zeros(yy.shape, bool)
    if texture == 'checker':
        return (y // 4 + x // 4) % 2 == 1
    if texture == 'hstripes':
        return (y // 2) % 2 == 1
    if texture == 'vstripes':
        return (x // 2) % 2 == 1
    if texture == 'diag_up':
        return ((x + y) // 3) % 2 == 1
    if texture == 'dots':
        cy, cx = y % 6 - 2.5, x % 6 - 2.5
        return cy * cy + cx * cx <= 2.6
    if texture == 'grid':
        return (y % 5 == 0) | (x % 5 == 0)
    if texture == 'crosshatch':
        return ((x + y) % 6 == 0) | ((x - y + 66) % 6 == 0)
    if texture == 'speckle':
        return rng.random(yy.shape) < 0.5
    if texture == 'zigzag':
        return ((y + np.abs(x % 8 - 4)) // 2) % 2 == 1
    if texture == 'chevron':
        return ((x + np.abs(y % 8 - 4)) // 2) % 2 == 1
    if texture == 'rings':
        dy, dx = yy + 0.5 - center[0], xx + 0.5 - center[1]
        return np.floor(np.sqrt(dy * dy + dx * dx) / 2.0) % 2 == 1
    raise ValueError(f'Unknown texture {texture!r}.')


def _luma(colour: np.ndarray) -> float:
    return float(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])


def _object_colours(rng: np.random.Generator,
                    avoid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A base and a pattern colour (RGB), contrasting with each other and
    with the background colour ``avoid``."""
    for _ in range(32):
        base = rng.integers(0, 256, size=3)
        if np.abs(base - avoid).sum() >= 120:
            break
    for _ in range(32):
        pattern = rng.integers(0, 256, size=3)
        if abs(_luma(pattern) - _luma(base)) >= 70:
            break
    return base, pattern


def _background(rng: np.random.Generator,
                size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """A smooth random background (int32 H×W×3 RGB) and its mean colour."""
    height, width = size
    colours = rng.integers(0, 256, size=(2, 3))
    cells = int(rng.integers(2, 6))
    coarse = rng.integers(0, 256, size=(cells, cells), dtype=np.uint8)
    # uint8 bilinear resizing is fixed-point in OpenCV: bit-exact everywhere.
    blend = cv2.resize(coarse, (width, height),
                       interpolation=cv2.INTER_LINEAR).astype(np.int32)
    image = (colours[0] * (255 - blend[..., None]) +
             colours[1] * blend[..., None]) // 255
    return image.astype(np.int32), image.reshape(-1, 3).mean(0)


def _outline(instances: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another instance (or background).
    """
    band = np.zeros(instances.shape, bool)
    diff_v = instances[1:] != instances[:-1]
    diff_h = instances[:, 1:] != instances[:, :-1]
    band[1:] |= diff_v
    band[:-1] |= diff_v
    band[:, 1:] |= diff_h
    band[:, :-1] |= diff_h
    return band & (instances > 0)


@dataclass
class _Spec:
    category: ToyCategory
    label: int
    center: Tuple[float, float]
    radius: float
    angle: float


def render_image(rng: np.random.Generator, specs: Sequence[_Spec],
                 size: Tuple[int, int] = DEFAULT_SIZE,
                 noise: int = 6) -> Tuple[np.ndarray, np.ndarray,
                                          List[ToyObject]]:
    """Draw objects, in order (later ones occlude earlier ones).

    Args:
        rng (numpy.random.Generator): Colours, texture phases and noise.
        specs (Sequence[_Spec]): What to draw where.
        size (tuple[int, int]): (height, width). Default: (64, 64).
        noise (int): Amplitude of the uniform pixel noise. Default: 6.

    Returns:
        tuple: The RGB uint8 H×W×3 image, the uint8 H×W VOC-style label
        (0 background, labels of the specs, 255 outlines) and the drawn
        :class:`ToyObject` list.
    """
    size = tuple(int(s) for s in size)
    yy, xx = _grid(size)
    image, bg_mean = _background(rng, size)
    instances = np.zeros(size, np.int32)
    areas, colours = [], []
    for index, spec in enumerate(specs, start=1):
        mask = shape_mask(spec.category.shape, yy, xx, spec.center,
                          spec.radius, spec.angle)
        pattern = texture_pattern(spec.category.texture, yy, xx, spec.center,
                                  rng)
        base, second = _object_colours(rng, bg_mean)
        colour = np.where(pattern[..., None], second, base)
        image[mask] = colour[mask]
        instances[mask] = index
        areas.append(int(mask.sum()))
        drawn = (base, ) if spec.category.texture == 'solid' else (base,
                                                                   second)
        colours.append(tuple(tuple(int(c) for c in rgb) for rgb in drawn))
    if noise:
        image += rng.integers(-noise, noise + 1, size=image.shape,
                              dtype=np.int32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    labels = np.zeros(len(specs) + 1, np.uint8)
    labels[1:] = [spec.label for spec in specs]
    label = labels[instances]
    label[_outline(instances)] = 255
    visible = np.bincount(instances.ravel(), minlength=len(specs) + 1)
    objects = [
        ToyObject(label=spec.label, name=spec.category.name,
                  center=spec.center, radius=spec.radius, angle=spec.angle,
                  visible=int(visible[i]), area=areas[i - 1],
                  colours=colours[i - 1])
        for i, spec in enumerate(specs, start=1)
    ]
    return image, label, objects


def _random_spec(rng: np.random.Generator, categories: Sequence[ToyCategory],
                 size: Tuple[int, int], radius_range: Tuple[float, float],
                 margin: float, category: Optional[int] = None) -> _Spec:
    """A random object: class, radius (fraction of the shorter side), centre
    (at least ``margin`` radii inside the image, negative: may stick out)
    and rotation."""
    if category is None:
        category = int(rng.integers(len(categories)))
    cat = categories[category]
    short = min(size)
    radius = float(rng.uniform(*radius_range)) * short
    lo = margin * radius
    center = tuple(float(rng.uniform(lo, s - lo)) if s > 2 * lo else s / 2.0
                   for s in size)
    angle = float(rng.uniform(-cat.max_rotation, cat.max_rotation))
    return _Spec(cat, category + 1, center, radius, angle)


def sample_scene(rng: np.random.Generator,
                 size: Tuple[int, int] = DEFAULT_SIZE,
                 categories: Optional[Sequence[str]] = None,
                 num_objects: Tuple[int, int] = (1, 3),
                 radius_range: Tuple[float, float] = (0.13, 0.34),
                 max_cover: float = 0.5,
                 attempts: int = 8) -> Tuple[np.ndarray, np.ndarray,
                                             List[ToyObject]]:
    """A scene of ``num_objects`` (inclusive range) random objects.

    A new object is placed, within ``attempts`` tries, so that it covers at
    most ``max_cover`` of any earlier object.

    Returns:
        tuple: ``(image, label, objects)`` as :func:`render_image`; labels
        index ``categories`` (default: all, in dataset order) from 1.
    """
    cats = get_categories(categories)
    size = tuple(int(s) for s in size)
    yy, xx = _grid(size)
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    specs: List[_Spec] = []
    masks: List[np.ndarray] = []
    for _ in range(count):
        category = int(rng.integers(len(cats)))
        for _ in range(attempts):
            spec = _random_spec(rng, cats, size, radius_range, 0.3, category)
            mask = shape_mask(spec.category.shape, yy, xx, spec.center,
                              spec.radius, spec.angle)
            if all((m & mask).sum() <= max_cover * max(m.sum(), 1)
                   for m in masks):
                break
        for m in masks:
            m &= ~mask
        specs.append(spec)
        masks.append(mask)
    return render_image(rng, specs, size)


def sample_single(rng: np.random.Generator, category: int,
                  size: Tuple[int, int] = DEFAULT_SIZE,
                  categories: Optional[Sequence[str]] = None,
                  radius_range: Tuple[float, float] = (0.22, 0.45),
                  margin: float = 0.6) -> Tuple[np.ndarray, np.ndarray,
                                                List[ToyObject]]:
    """One object of ``categories[category]`` (0-based index).

    Large radii (e.g. ``(0.7, 1.4)`` with ``margin=-0.5``) give close-ups in
    which the texture fills most of the frame.
    """
    cats = get_categories(categories)
    spec = _random_spec(rng, cats, tuple(size), radius_range, margin,
                        category)
    return render_image(rng, [spec], size)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def write_png(path: str, array: np.ndarray) -> None:
    """Write an RGB (H×W×3) or single-channel (H×W) uint8 PNG, reproducibly.
    """
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode('.png', array, list(PNG_PARAMS))
    if not ok:
        raise OSError(f'Could not encode {path}.')
    with open(path, 'wb') as file:
        file.write(data.tobytes())


def generate_world(out_dir: str,
                   seed: int = 0,
                   num_train: int = 2000,
                   num_val: int = 500,
                   size: Tuple[int, int] = DEFAULT_SIZE,
                   categories: Optional[Sequence[str]] = None,
                   progress: bool = False) -> Dict:
    """Write a toy world in PASCAL VOC's layout (see the module docstring).

    Args:
        out_dir (str): The data root to write (created; existing files of
            the same names are overwritten).
        seed (int): The world's seed. Default: 0.
        num_train (int): Training images. Default: 2000.
        num_val (int): Validation images. Default: 500.
        size (tuple[int, int]): (height, width). Default: (64, 64).
        categories (Sequence[str], optional): A subset of
            :data:`CLASS_NAMES`, in the order wanted (labels 1..K). Default:
            all.
        progress (bool): Show a progress bar. Default: False.

    Returns:
        dict: The contents of ``world.json``.
    """
    cats = get_categories(categories)
    names = [c.name for c in cats]
    size = tuple(int(s) for s in size)
    img_dir = osp.join(out_dir, 'JPEGImages')
    ann_dir = osp.join(out_dir, 'SegmentationClass')
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    for folder in (img_dir, ann_dir, split_dir):
        os.makedirs(folder, exist_ok=True)
    bar, chunk, pending = None, max(1, (num_train + num_val) // 50), 0
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(num_train + num_val)
    pixels, objects_per_class, images_per_class = {}, {}, {}
    for split, count in (('train', num_train), ('val', num_val)):
        ids = []
        pix = np.zeros(256, np.int64)
        objs = np.zeros(len(cats) + 1, np.int64)
        imgs = np.zeros(len(cats) + 1, np.int64)
        for index in range(count):
            rng = image_rng(seed, split, index)
            image, label, objects = sample_scene(rng, size, names)
            name = f'{split}_{index:06d}'
            write_png(osp.join(img_dir, name + '.png'), image)
            write_png(osp.join(ann_dir, name + '.png'), label)
            ids.append(name)
            pix += np.bincount(label.ravel(), minlength=256)
            present = np.unique(label)
            imgs[present[(present > 0) & (present < 255)]] += 1
            for obj in objects:
                objs[obj.label] += obj.visible > 0
            pending += 1
            if bar is not None and (pending == chunk or index + 1 == count):
                bar.update(pending)  # in chunks: one line each when logged
                pending = 0
        with open(osp.join(split_dir, f'{split}.txt'), 'w') as file:
            file.write(''.join(i + '\n' for i in ids))
        pixels[split] = {n: int(pix[k]) for k, n in enumerate(names, 1)}
        pixels[split].update(background=int(pix[0]), ignore=int(pix[255]))
        objects_per_class[split] = {
            n: int(objs[k]) for k, n in enumerate(names, 1)}
        images_per_class[split] = {
            n: int(imgs[k]) for k, n in enumerate(names, 1)}
    info = dict(
        name='toy_world',
        version=WORLD_VERSION,
        seed=int(seed),
        classes=names,
        shapes={c.name: c.shape for c in cats},
        textures={c.name: c.texture for c in cats},
        image_size=list(size),
        num_train=int(num_train),
        num_val=int(num_val),
        img_dir='JPEGImages',
        ann_dir='SegmentationClass',
        img_suffix='.png',
        seg_map_suffix='.png',
        split_files={s: f'ImageSets/Segmentation/{s}.txt'
                     for s in ('train', 'val')},
        label_format=('VOC: 0 background, k = classes[k-1], 255 object '
                      'outlines; read with reduce_zero_label=True'),
        reduce_zero_label=True,
        pixels=pixels,
        objects=objects_per_class,
        images=images_per_class,
    )
    with open(osp.join(out_dir, 'world.json'), 'w') as file:
        json.dump(info, file, indent=2, sort_keys=True)
        file.write('\n')
    if bar is not None:
        print()
    return info
