# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTInferencer: open-vocabulary inference with a tiny ZegOT trained on
VOC's split, checked against the segmentor itself and against the
calibrated probabilities computed here from the head's raw logits."""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from inference_models import (
    build_model,
    save_checkpoint,
    write_images,
    write_tiny_zegot,
)
from mmseg.structures import SegDataSample
from PIL import Image

from mmseg_zegot.apis import ZegOTInferencer
from mmseg_zegot.datasets.splits import get_split
from mmseg_zegot.utils import load_checkpoint_safely, publish_checkpoint, save_published

VOC = get_split('voc')
# cat, person: VOC seen; sheep: VOC unseen; sky, grass: not VOC classes.
NEW = ('sky', 'cat', 'sheep', 'grass', 'person')
NEW_SEEN = (False, True, False, False, True)
CITYSCAPES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Config, full checkpoint (no dataset_meta), images, and the model."""
    folder = tmp_path_factory.mktemp('tiny')
    config = write_tiny_zegot(folder)
    checkpoint = folder / 'full.pth'
    model = save_checkpoint(config, checkpoint)
    images = write_images(folder / 'images', [(40, 48), (32, 32), (48, 56)])
    return dict(config=config, checkpoint=str(checkpoint), images=images,
                folder=folder, model=model)


@pytest.fixture(scope='module')
def inferencer(tiny):
    return ZegOTInferencer(tiny['config'], tiny['checkpoint'], device='cpu')


def reference_model(tiny, classes):
    """A second segmentor with the checkpoint's weights and ``classes`` as
    test vocabulary."""
    model = build_model(tiny['config'])
    state = load_checkpoint_safely(tiny['checkpoint'])['state_dict']
    model.load_state_dict(state, strict=True)
    model.set_test_vocabulary(classes)
    return model


def rgb(path):
    return np.asarray(Image.open(path).convert('RGB'))


def raw_batch(image_rgb):
    """The image as the data preprocessor's input, without any pipeline."""
    height, width = image_rgb.shape[:2]
    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    sample = SegDataSample()
    sample.set_metainfo(dict(img_shape=(height, width),
                             ori_shape=(height, width)))
    return dict(inputs=[torch.from_numpy(bgr).permute(2, 0, 1)],
                data_samples=[sample])


def calibrated_argmax(model, image_rgb, seen, seen_bias, lam):
    """argmax of σ(λ·decoder + (1-λ)·score) - seen_bias·seen, from the
    head's raw (tensor-mode) logits upsampled here."""
    data = model.data_preprocessor(raw_batch(image_rgb), False)
    with torch.no_grad():
        logits = model._forward(data['inputs'])
    size = image_rgb.shape[:2]
    up = {key: F.interpolate(value.float(), size=size, mode='bilinear',
                             align_corners=False)
          for key, value in logits.items()}
    prob = (lam * up['decoder_logits'] +
            (1 - lam) * up['score_logits']).sigmoid()
    prob = prob - seen_bias * torch.tensor(seen, dtype=prob.dtype)[
        None, :, None, None]
    return prob[0].argmax(0).numpy(), prob[0]


def test_new_vocabulary_replaces_training_one(tiny, inferencer):
    results = inferencer(tiny['images'], classes=list(NEW))
    model = reference_model(tiny, NEW)
    head = model.decode_head
    assert head.seen_bias == pytest.approx(0.1)
    assert head.seen_mask.tolist() == list(NEW_SEEN)
    assert inferencer.model.decode_head.seen_mask.tolist() == list(NEW_SEEN)
    assert len(results) == len(tiny['images'])
    used = set()
    for path, result in zip(tiny['images'], results):
        image = rgb(path)
        label = result['label']
        assert result['classes'] == NEW
        assert result['img_path'] == path
        assert label.shape == image.shape[:2]
        assert label.dtype == np.int64
        assert 0 <= label.min() and label.max() < len(NEW)
        used.update(np.unique(label).tolist())
        with torch.no_grad():
            own = model.test_step(raw_batch(image))[0]
        np.testing.assert_array_equal(label, own.pred_sem_seg.data[0].numpy())
        expected, _ = calibrated_argmax(model, image, NEW_SEEN, 0.1,
                                        head.ensemble_weight)
        np.testing.assert_array_equal(label, expected)
    assert len(used) >= 2  # the pictures below show several classes


def test_no_overlap_with_seen_classes_means_no_calibration(tiny, inferencer):
    classes = ('sky', 'grass', 'road', 'tree')
    result = inferencer(tiny['images'][0], classes=classes)[0]
    model = reference_model(tiny, classes)
    assert not inferencer.model.decode_head.seen_mask.any()
    expected, _ = calibrated_argmax(model, rgb(tiny['images'][0]),
                                    (False, ) * 4, 0.0, 0.5)
    np.testing.assert_array_equal(result['label'], expected)


def test_explicit_seen_classes_and_switching_back(tiny, inferencer):
    image = rgb(tiny['images'][1])
    bgr = cv2.imread(tiny['images'][1])
    result = inferencer(bgr, classes=NEW, seen_classes=['sky'])[0]
    model = reference_model(tiny, NEW)
    expected, _ = calibrated_argmax(
        model, image, (True, False, False, False, False), 0.1, 0.5)
    np.testing.assert_array_equal(result['label'], expected)
    with pytest.raises(ValueError, match=r"\['dog'\].*not in the test"):
        inferencer(bgr, classes=NEW, seen_classes=['dog'])
    # No classes: back to the config's vocabulary and seen classes.
    result = inferencer(bgr)[0]
    assert result['classes'] == VOC.classes
    assert inferencer.model.decode_head.seen_mask.tolist() == list(
        VOC.seen_mask)
    assert inferencer.model.text_encoder.vocabulary == VOC.classes


def test_checkpoint_metadata_never_names_the_classes(tiny, inferencer):
    """No dataset_meta (mmseg would fall back to Cityscapes) and a
    dataset_meta with other names both give the config's classes."""
    other = tiny['folder'] / 'other_meta.pth'
    checkpoint = load_checkpoint_safely(tiny['checkpoint'])
    checkpoint['meta']['dataset_meta'] = dict(classes=CITYSCAPES)
    torch.save(checkpoint, other)
    assert 'dataset_meta' not in load_checkpoint_safely(
        tiny['checkpoint'])['meta']
    image = tiny['images'][2]
    plain = inferencer(image)[0]
    with_meta = ZegOTInferencer(tiny['config'], str(other), device='cpu')
    assert with_meta.metadata['dataset_meta']['classes'] == CITYSCAPES
    leaked = with_meta(image)[0]
    for result in (plain, leaked):
        assert result['classes'] == VOC.classes
        assert result['label'].max() < len(VOC.classes)
    np.testing.assert_array_equal(plain['label'], leaked['label'])
    model = reference_model(tiny, VOC.classes)
    expected, _ = calibrated_argmax(model, rgb(image), VOC.seen_mask, 0.1,
                                    0.5)
    np.testing.assert_array_equal(plain['label'], expected)


@pytest.mark.parametrize('classes,match', [
    ([], 'at least two'),
    (['cat'], 'at least two'),
    ('cat,dog', 'list of class names'),
    (['cat', 'dog', 'cat'], r"\['cat'\] more than once"),
    (['cat', ''], 'empty or non-string'),
    (['cat', '  '], 'empty or non-string'),
    (['cat', None], 'empty or non-string'),
])
def test_bad_vocabularies_are_rejected(tiny, inferencer, classes, match):
    with pytest.raises(ValueError, match=match):
        inferencer(tiny['images'][0], classes=classes)


def test_inputs_folders_lists_arrays_and_files(tiny, inferencer, tmp_path):
    folder = tiny['folder'] / 'images'
    from_folder = inferencer(folder, classes=NEW)
    assert [r['img_path'] for r in from_folder] == tiny['images']
    arrays = [cv2.imread(path) for path in tiny['images']]  # BGR
    from_arrays = inferencer(arrays, classes=NEW, out_dir=tmp_path)
    for a, b in zip(from_folder, from_arrays):
        assert b['img_path'] is None
        np.testing.assert_array_equal(a['label'], b['label'])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f'array_{i}_{kind}.png' for i in range(3)
                             for kind in ('label', 'overlay'))
    label = cv2.imread(str(tmp_path / 'array_0_label.png'),
                       cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, from_folder[0]['label'])

    with pytest.raises(ValueError, match='overwrite'):
        inferencer([tiny['images'][0], tiny['images'][0]], classes=NEW,
                   out_dir=tmp_path)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='holds no image'):
        inferencer(tmp_path / 'empty', classes=NEW)
    with pytest.raises(ValueError, match='opacity'):
        inferencer(folder, classes=NEW, out_dir=tmp_path, opacity=-0.1)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(tmp_path / 'missing.png', classes=NEW)


def test_label_png_is_uint16_beyond_255_classes(tiny, inferencer, tmp_path):
    classes = [f'thing {i}' for i in range(300)]
    result = inferencer(tiny['images'][1], classes=classes,
                        out_dir=tmp_path)[0]
    label = cv2.imread(str(tmp_path / 'image_1_label.png'),
                       cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint16
    np.testing.assert_array_equal(label, result['label'])


def test_published_checkpoint_gives_the_same_predictions(tiny, inferencer,
                                                         tmp_path):
    checkpoint = load_checkpoint_safely(tiny['checkpoint'])
    published = publish_checkpoint(checkpoint, tiny['model'])
    assert not any(key.startswith('image_encoder.visual.')
                   for key in published['state_dict'])
    save_published(published, str(tmp_path / 'published.pth'))
    light = ZegOTInferencer(tiny['config'], str(tmp_path / 'published.pth'),
                            device='cpu')
    for a, b in zip(inferencer(tiny['images'], classes=NEW),
                    light(tiny['images'], classes=NEW)):
        np.testing.assert_array_equal(a['label'], b['label'])
    no_clip = write_tiny_zegot(tiny['folder'], pretrained=False)
    with pytest.raises(ValueError, match='pretrained'):
        ZegOTInferencer(no_clip, str(tmp_path / 'published.pth'),
                        device='cpu')


def test_set_test_vocabulary_restores_dataset_vocabulary(tiny):
    model = build_model(tiny['config'])
    original = model.decode_head.seen_mask.clone()
    model.set_test_vocabulary(NEW)
    assert model.test_classes == NEW and model.out_channels == len(NEW)
    assert model.train_classes == VOC.seen
    model.set_test_vocabulary(model.class_names)
    assert model.test_classes == VOC.classes
    assert torch.equal(model.decode_head.seen_mask, original)
    with pytest.raises(ValueError, match='more than once'):
        model.set_test_vocabulary(['cat', 'cat'])


def test_image_too_large_for_whole_inference_is_resized_and_said(
        tiny, inferencer, tmp_path, log_messages):
    """A 4000×3000 photo with a whole-image config asked for 562 GB; here
    the tiny model (trained at 32×32: at most 4×1024 pixels) gets a 96×128
    image."""
    [path] = write_images(tmp_path, [(96, 128)])
    seen = []
    hook = inferencer.model.image_encoder.register_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        label = inferencer(path, classes=NEW)[0]['label']
    finally:
        hook.remove()
    assert label.shape == (96, 128)
    assert inferencer.max_pixels == 4 * 32 * 32
    assert seen == [(48, 72)]  # whole 8-px patches, at most 4096 pixels
    assert ('image_0: 128×96 pixels is more than whole-image inference '
            'takes for this model (4096 pixels, 4 × its training input '
            'size): predicted at 72×48 and resized back. For full '
            'resolution use slide inference: --cfg-options '
            'model.test_cfg.mode=slide model.test_cfg.crop_size="(32,32)" '
            'model.test_cfg.stride="(21,21)".') in log_messages


def test_empty_image_file_is_named(tiny, inferencer, tmp_path):
    """A zero-byte image raised a cv2.error without the file."""
    empty = tmp_path / 'empty.png'
    empty.touch()
    with pytest.raises(ValueError) as info:
        inferencer(str(empty), classes=NEW)
    assert str(info.value) == f'the image {empty} is empty (0 bytes)'


@pytest.mark.parametrize('array,problem,fix', [
    (np.zeros((32, 32, 4), np.uint8), 'has the shape (32, 32, 4)',
     'cv2.COLOR_BGRA2BGR'),
    (np.zeros((32, 32, 3), np.float32), 'is a float32 array',
     '(array * 255).round().astype(np.uint8)'),
    (np.zeros((32, 32, 3), np.uint16), 'is a uint16 array',
     '(array >> 8).astype(np.uint8)'),
    (np.zeros((32, 32), np.uint8), 'has the shape (32, 32)',
     'cv2.COLOR_GRAY2BGR'),
])
def test_arrays_that_are_not_bgr_uint8_are_refused(tiny, inferencer, array,
                                                   problem, fix):
    """RGBA raised a bare RuntimeError; float [0, 1] and uint16 arrays gave
    garbage without an error."""
    with pytest.raises(ValueError) as info:
        inferencer([np.zeros((32, 32, 3), np.uint8), array], classes=NEW)
    message = str(info.value)
    assert message.startswith(f'array_1 {problem}; the inferencer takes '
                              'H×W×3')
    assert fix in message
