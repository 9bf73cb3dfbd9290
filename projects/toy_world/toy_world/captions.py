# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Image-caption pairs of the toy world: the toy CLIP's "web data".

A pair is an image of the toy world's generator family and a caption that
names every visible object (:func:`visible_classes`), whatever the later
zero-shot split, as web captions name every concept the real CLIP knows.
Two caption styles (:data:`CAPTION_STYLES`):

* ``'names'``: the objects' class names in a template, e.g. "a photo of a
  star and a moon.";
* ``'described'``: each name may come with words for what the image shows
  of that object: its size, its colours and its texture, e.g. "a photo of a
  small red and white dotted star and a moon.". Every word is true of the
  image (sizes from the radius, colours the nearest of
  :data:`COLOUR_NAMES`, textures from :data:`TEXTURE_WORDS`), so the text
  tower learns the class names among words for shared visual properties.

Which captions are true of which images is exact (:meth:`CaptionPair.
describes`): contrastive pretraining counts every caption true of an image
as a positive of it, not only its own.
"""
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from .world import (
    DEFAULT_SIZE,
    ToyObject,
    get_categories,
    sample_scene,
    sample_single,
)

__all__ = [
    'CAPTION_STYLES', 'CAPTION_TEMPLATES', 'COLOUR_NAMES', 'CaptionPair',
    'DESCRIBED_TEMPLATES', 'TEXTURE_WORDS', 'colour_name', 'make_caption',
    'make_described_caption', 'object_words', 'sample_caption_pair',
    'visible_classes'
]

#: Caption styles of :func:`sample_caption_pair`.
CAPTION_STYLES = ('names', 'described')

#: Templates of the ``'names'`` style; ``{}`` receives "star" or "star, a
#: moon and a ring". Every class name starts with a consonant, so "a" is
#: always right.
CAPTION_TEMPLATES: Tuple[str, ...] = (
    'a photo of a {}.',
    'a picture of a {}.',
    'an image of a {}.',
    'a drawing of a {}.',
    'a rendering of a {}.',
    'a photo of the {}.',
    'a close-up photo of a {}.',
    'there is a {} in the picture.',
    'this is a {}.',
    'a {} on a background.',
    'a {}.',
    'a small {}.',
    'a large {}.',
)

#: Templates of the ``'described'`` style; ``{}`` receives the object
#: phrases with their articles ("an orange star and a circle").
DESCRIBED_TEMPLATES: Tuple[str, ...] = (
    'a photo of {}.',
    'a picture of {}.',
    'an image of {}.',
    'a drawing of {}.',
    'a rendering of {}.',
    'a close-up photo of {}.',
    'there is {} in the picture.',
    'this is {}.',
    '{} on a background.',
    '{}.',
)

#: Colour names and their RGB prototypes; a drawn colour is called by the
#: nearest prototype (Euclidean distance in RGB).
COLOUR_NAMES: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 30, 30),
    'orange': (245, 140, 20),
    'yellow': (240, 220, 40),
    'green': (40, 170, 60),
    'blue': (40, 70, 220),
    'purple': (140, 50, 180),
    'pink': (245, 150, 200),
    'brown': (130, 80, 40),
    'black': (20, 20, 20),
    'white': (240, 240, 240),
    'gray': (128, 128, 128),
}

#: The word for each texture of :func:`~.world.texture_pattern`.
#: Several categories share a word (three are striped, two zigzag).
TEXTURE_WORDS: Dict[str, str] = {
    'solid': 'plain',
    'checker': 'checkered',
    'hstripes': 'striped',
    'vstripes': 'striped',
    'diag_up': 'striped',
    'dots': 'dotted',
    'grid': 'gridded',
    'crosshatch': 'hatched',
    'speckle': 'speckled',
    'zigzag': 'zigzag',
    'chevron': 'zigzag',
    'rings': 'concentric',
}

#: Size words by circumradius over the shorter image side: "small" below
#: the first bound, "large" from the second on, no word in between.
SIZE_BOUNDS = (0.2, 0.3)

#: Kinds of pretraining images and their probabilities: scenes like the
#: segmentation data, single objects, and close-ups whose texture fills most
#: of the frame.
PAIR_KINDS = (('scene', 0.5), ('single', 0.3), ('closeup', 0.2))

_PROTOTYPES = np.array(list(COLOUR_NAMES.values()), np.int64)


def colour_name(rgb: Sequence[int]) -> str:
    """The name in :data:`COLOUR_NAMES` nearest to an RGB colour."""
    distance = ((_PROTOTYPES - np.asarray(rgb, np.int64))**2).sum(1)
    return list(COLOUR_NAMES)[int(distance.argmin())]


def object_words(obj: ToyObject, texture: str,
                 size: Tuple[int, int]) -> Dict[str, Tuple[str, ...]]:
    """Words true of one drawn object, by kind.

    Args:
        obj (ToyObject): The object (its ``colours`` and ``radius``).
        texture (str): Its category's texture key.
        size (tuple[int, int]): The image (height, width).

    Returns:
        dict: ``size`` (``()``, ``('small',)`` or ``('large',)``),
        ``colours`` (one or two distinct names, base colour first) and
        ``texture`` (one word).
    """
    relative = obj.radius / min(size)
    size_words = (('small', ) if relative < SIZE_BOUNDS[0] else
                  ('large', ) if relative >= SIZE_BOUNDS[1] else ())
    colours = tuple(dict.fromkeys(colour_name(c) for c in obj.colours))
    return dict(size=size_words, colours=colours,
                texture=(TEXTURE_WORDS[texture], ))


@dataclass(frozen=True, eq=False)
class CaptionPair:
    """An image, its caption and what the caption says.

    Args:
        image (np.ndarray): RGB uint8, H×W×3.
        caption (str): The caption.
        labels (tuple[int, ...]): The labels (1..K, sorted) it names: the
            visible objects' classes.
        facts (dict[int, frozenset[str]]): Per label, every description
            word true of some object of that class.
        claims (dict[int, frozenset[str]]): Per label, the description
            words the caption uses (empty in the ``'names'`` style).
    """
    image: np.ndarray
    caption: str
    labels: Tuple[int, ...]
    facts: Dict[int, FrozenSet[str]]
    claims: Dict[int, FrozenSet[str]]

    def describes(self, other: 'CaptionPair') -> bool:
        """Whether this caption is true of ``other``'s image: the same
        classes, and every word it uses true of them there."""
        return self.labels == other.labels and all(
            self.claims[k] <= other.facts[k] for k in self.labels)


def visible_classes(objects: Sequence[ToyObject], min_pixels: int = 24,
                    min_fraction: float = 0.3) -> List[int]:
    """Labels (sorted, unique) of the objects that can be seen: at least
    ``min_pixels`` visible pixels, or ``min_fraction`` of their own area."""
    labels = {
        o.label
        for o in objects
        if o.visible >= min_pixels or o.visible >= min_fraction * o.area > 0
    }
    if not labels and objects:
        labels = {objects[-1].label}  # the top object is never covered
    return sorted(labels)


def make_caption(names: Sequence[str], rng: np.random.Generator,
                 templates: Sequence[str] = CAPTION_TEMPLATES) -> str:
    """A caption naming every class of ``names`` once, in random order."""
    names = list(dict.fromkeys(names))
    order = [names[i] for i in rng.permutation(len(names))]
    listed = _join(order[:1] + ['a ' + name for name in order[1:]])
    return templates[int(rng.integers(len(templates)))].format(listed)


def _join(phrases: Sequence[str]) -> str:
    """"x", "x and y" or "x, y and z"."""
    if len(phrases) == 1:
        return phrases[0]
    return ', '.join(phrases[:-1]) + ' and ' + phrases[-1]


def _with_article(phrase: str) -> str:
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def make_described_caption(words: Dict[str, Dict[str, Tuple[str, ...]]],
                           rng: np.random.Generator,
                           keep: float = 0.5) -> Tuple[str, Dict[str, set]]:
    """A caption naming every class of ``words`` once, in random order, each
    with each kind of its description words kept with probability ``keep``.

    Args:
        words (dict): Class name -> :func:`object_words` of the object to
            describe.
        rng (numpy.random.Generator): Order, choices and template.
        keep (float): Probability of keeping each kind of word.

    Returns:
        tuple: The caption and, per class name, the set of words used.
    """
    names = list(words)
    phrases, used = [], {}
    for i in rng.permutation(len(names)):
        name = names[i]
        size, colours, texture = (
            words[name][kind] if rng.random() < keep else ()
            for kind in ('size', 'colours', 'texture'))
        used[name] = set(size) | set(colours) | set(texture)
        described = [*size, ' and '.join(colours), *texture, name]
        phrases.append(_with_article(' '.join(w for w in described if w)))
    template = DESCRIBED_TEMPLATES[int(rng.integers(len(DESCRIBED_TEMPLATES)))]
    return template.format(_join(phrases)), used


def sample_caption_pair(rng: np.random.Generator,
                        size: Tuple[int, int] = DEFAULT_SIZE,
                        categories: Optional[Sequence[str]] = None,
                        style: str = 'names',
                        kinds: Sequence[Tuple[str, float]] = PAIR_KINDS
                        ) -> CaptionPair:
    """One image-caption pair; the caption names every visible object.

    Args:
        rng (numpy.random.Generator): The pair's generator.
        size (tuple[int, int]): (height, width). Default: (64, 64).
        categories (Sequence[str], optional): Category subset (default:
            all), in label order.
        style (str): One of :data:`CAPTION_STYLES`. Default: ``'names'``.
        kinds (Sequence[tuple[str, float]]): Kinds of images and their
            probabilities. Default: :data:`PAIR_KINDS`.

    Returns:
        CaptionPair: The pair.
    """
    if style not in CAPTION_STYLES:
        raise ValueError(
            f'style must be one of {CAPTION_STYLES}, got {style!r}')
    cats = get_categories(categories)
    names = [c.name for c in cats]
    probs = np.array([p for _, p in kinds], float)
    kind = kinds[int(rng.choice(len(kinds), p=probs / probs.sum()))][0]
    if kind == 'scene':
        image, _, objects = sample_scene(rng, size, names)
    elif kind == 'single':
        image, _, objects = sample_single(rng, int(rng.integers(len(cats))),
                                          size, names)
    elif kind == 'closeup':
        image, _, objects = sample_single(rng, int(rng.integers(len(cats))),
                                          size, names, radius_range=(0.7, 1.4),
                                          margin=-0.4)
    else:
        raise ValueError(f'Unknown pair kind {kind!r}.')
    labels = tuple(visible_classes(objects))
    facts = {k: set() for k in labels}
    top = {}
    for obj in objects:
        if obj.label in facts:
            obj_words = object_words(obj, cats[obj.label - 1].texture, size)
            facts[obj.label].update(*obj_words.values())
            top[obj.label] = obj_words  # later objects are drawn on top
    facts = {k: frozenset(v) for k, v in facts.items()}
    if style == 'names':
        caption = make_caption([names[k - 1] for k in labels], rng)
        claims = {k: frozenset() for k in labels}
    else:
        caption, used = make_described_caption(
            {names[k - 1]: top[k] for k in labels}, rng)
        claims = {k: frozenset(used[names[k - 1]]) for k in labels}
    return CaptionPair(image, caption, labels, facts, claims)
