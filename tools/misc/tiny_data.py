"""Deterministic generators of two tiny, learnable datasets.

Both are written in the real on-disk formats, so the stock dataset classes
read them unchanged:

* ``make_tiny_coco``: coloured circles, squares and triangles on textured
  backgrounds, in the layout of mmdet's ``CocoDataset`` (``annotations/
  instances_{train,val}2017.json``, ``{train,val}2017/*.jpg``) with polygon
  masks.
* ``make_tiny_cityscapes``: toy street scenes in the layout of mmseg's
  ``CityscapesDataset`` (``leftImg8bit/`` images, ``gtFine/`` label maps of
  Cityscapes trainIds, 255 = ignore).

Every image draws its randomness from its own generator, seeded by
``(seed, dataset, split, index)`` only, so the files are byte-for-byte
reproducible and a small dataset is a prefix of a larger one with the same
seed. ``make_tiny_datasets`` makes both, each at most once (see its
docstring).
"""
import json
import os
import os.path as osp
import shutil

import numpy as np
from mmengine.utils import track_iter_progress
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

__all__ = [
    'TINY_COCO_CLASSES', 'make_tiny_coco', 'make_tiny_cityscapes',
    'make_tiny_datasets'
]

#: Bumped whenever the generated files change; part of the marker file.
GENERATOR_VERSION = 1
MARKER = '.complete'

TINY_COCO_CLASSES = ('circle', 'square', 'triangle')
#: (height, width) of COCO images, used in turn.
COCO_IMAGE_SIZES = ((128, 128), (160, 128), (128, 160), (144, 112), (112, 176))
#: (height, width) of Cityscapes images (1:2 like Cityscapes), used in turn.
CITYSCAPES_IMAGE_SIZES = ((128, 256), (128, 256), (128, 256), (96, 192))

_SPLITS = ('train', 'val')
_STREAMS = {'coco': 1, 'cityscapes': 2}

# COCO part: category colours (RGB) and polygon vertex counts
_SHAPE_COLOURS = ((220, 50, 45), (40, 95, 225), (240, 200, 35))
_SHAPE_VERTICES = (24, 4, 3)
# circumradii in pixels; the minima make every shape ~18 px across
_MIN_RADII, _MAX_RADIUS = (9.0, 12.7, 11.5), 30.0
_PLACEMENT_TRIES = 30

# Cityscapes part: trainIds of the drawn classes
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR = (0, 1, 2, 8, 10, 11,
                                                          13)
IGNORE_INDEX = 255
_CAR_COLOURS = ((170, 30, 30), (30, 50, 140), (200, 200, 205), (30, 30, 35),
                (140, 140, 150), (200, 170, 40))


def _image_rng(seed, dataset, split, index):
    """The random generator of one image.

    Args:
        seed (int): Seed of the whole dataset.
        dataset (str): ``'coco'`` or ``'cityscapes'``.
        split (str): ``'train'`` or ``'val'``.
        index (int): Index of the image in its split.

    Returns:
        numpy.random.Generator: A generator seeded by the arguments only.
    """
    return np.random.default_rng(
        [seed, _STREAMS[dataset],
         _SPLITS.index(split), index])


def _indices(num, progress, title):
    """``range(num)``, with a titled progress bar when asked for.

    Args:
        num (int): Number of items.
        progress (bool): Whether to show a progress bar.
        title (str): Printed above the bar.

    Returns:
        Iterable[int]: The indices ``0 .. num - 1``.
    """
    if not progress:
        return range(num)
    print(title, flush=True)
    return track_iter_progress(list(range(num)))


def _smooth_noise(rng, height, width, cells, channels=1):
    """Bilinearly upsampled uniform noise in ``[0, 1]``.

    Args:
        rng (numpy.random.Generator): Random generator.
        height (int): Output height.
        width (int): Output width.
        cells (int): Number of noise cells along each side.
        channels (int): Number of independent channels.

    Returns:
        numpy.ndarray: Array of shape ``(height, width, channels)``.
    """
    grid = rng.random((cells + 1, cells + 1, channels))
    ys, xs = np.linspace(0, cells, height), np.linspace(0, cells, width)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _to_uint8(image, rng, noise_std):
    """Add pixel noise to a float image and convert it to ``uint8``.

    Args:
        image (numpy.ndarray): Float image in ``[0, 255]``.
        rng (numpy.random.Generator): Random generator.
        noise_std (float): Standard deviation of the Gaussian noise.

    Returns:
        numpy.ndarray: The noisy ``uint8`` image.
    """
    noisy = image + rng.normal(0, noise_std, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- COCO ----


def _muted_colours(rng, num):
    """Greyish RGB colours of low saturation.

    Args:
        rng (numpy.random.Generator): Random generator.
        num (int): Number of colours.

    Returns:
        numpy.ndarray: Array of shape ``(num, 3)``.
    """
    grey = rng.uniform(70, 180, (num, 1))
    return grey + rng.uniform(-25, 25, (num, 3))


def _background(rng, height, width):
    """A textured background: two muted colours blended by a gradient,
    stripes or smooth noise, plus faint colour noise.

    Args:
        rng (numpy.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        numpy.ndarray: Float image of shape ``(height, width, 3)``.
    """
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[:height, :width]
    along = xs * np.cos(angle) + ys * np.sin(angle)
    kind = rng.integers(3)
    if kind == 0:  # gradient
        weight = (along - along.min()) / np.ptp(along)
    elif kind == 1:  # stripes
        period = rng.uniform(8, 30)
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * along / period +
                                    rng.uniform(0, 2 * np.pi))
    else:  # blobs
        weight = _smooth_noise(rng, height, width, rng.integers(2, 6))[..., 0]
    low, high = _muted_colours(rng, 2)
    blend = low + (high - low) * weight[..., None]
    return blend + 24 * (_smooth_noise(rng, height, width, 8, 3) - 0.5)


def _shape_polygon(rng, label, centre, radius):
    """The polygon of one shape.

    Args:
        rng (numpy.random.Generator): Random generator.
        label (int): Index into ``TINY_COCO_CLASSES``.
        centre (numpy.ndarray): ``(x, y)`` of the centre.
        radius (float): Circumradius.

    Returns:
        numpy.ndarray: Vertices of shape ``(n, 2)``, rounded to 0.01 px.
    """
    num = _SHAPE_VERTICES[label]
    angles = rng.uniform(0, 2 * np.pi) + np.arange(num) * 2 * np.pi / num
    radii = np.full(num, radius)
    if TINY_COCO_CLASSES[label] == 'square' and rng.random() < 0.5:
        angles = np.pi / 4 + np.arange(num) * np.pi / 2  # axis-aligned
    elif TINY_COCO_CLASSES[label] == 'triangle':
        angles = angles + rng.uniform(-0.15, 0.15, num)
        radii = radii * rng.uniform(0.85, 1.0, num)
    offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.round(centre + radii[:, None] * offsets, 2)


def _place_objects(rng, height, width):
    """Random non-overlapping circles that hold the objects.

    Args:
        rng (numpy.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        list[tuple]: ``(label, centre, radius)`` of 1 to 4 objects.
    """
    objects = []
    for _ in range(rng.integers(1, 5)):
        label = int(rng.integers(len(TINY_COCO_CLASSES)))
        for _ in range(_PLACEMENT_TRIES):
            radius = rng.uniform(_MIN_RADII[label], _MAX_RADIUS)
            centre = rng.uniform(radius + 1,
                                 [width - radius - 1, height - radius - 1])
            if all(
                    np.hypot(*(centre - other)) > radius + other_radius + 3
                    for _, other, other_radius in objects):
                objects.append((label, centre, radius))
                break
    return objects


def _polygon_mask(polygon, height, width):
    """Rasterise a polygon exactly as the COCO API does.

    Args:
        polygon (numpy.ndarray): Vertices of shape ``(n, 2)``.
        height (int): Image height.
        width (int): Image width.

    Returns:
        numpy.ndarray: Boolean mask of shape ``(height, width)``.
    """
    rles = mask_utils.frPyObjects([polygon.ravel().tolist()], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _coco_image(rng, height, width):
    """Draw one COCO image.

    The shapes are painted over the pixels of their polygons as the COCO API
    rasterises them, so masks, boxes and pixels agree exactly.

    Args:
        rng (numpy.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[numpy.ndarray, list]: The ``uint8`` RGB image and its objects
        as ``(label, polygon)`` pairs.
    """
    image = _background(rng, height, width)
    objects = []
    for label, centre, radius in _place_objects(rng, height, width):
        polygon = _shape_polygon(rng, label, centre, radius)
        colour = np.array(_SHAPE_COLOURS[label]) + rng.uniform(-18, 18, 3)
        shading = 20 * (_smooth_noise(rng, height, width, 4) - 0.5)
        mask = _polygon_mask(polygon, height, width)
        image[mask] = colour + shading[mask]
        objects.append((label, polygon))
    return _to_uint8(image, rng, 4.0), objects


def _polygon_area(polygon):
    """Area of a simple polygon (shoelace formula).

    Args:
        polygon (numpy.ndarray): Vertices of shape ``(n, 2)``.

    Returns:
        float: The area.
    """
    xs, ys = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))


def _coco_annotation(polygon, label, ann_id, image_id, height, width):
    """The COCO annotation of one object.

    Args:
        polygon (numpy.ndarray): Vertices of shape ``(n, 2)``.
        label (int): Index into ``TINY_COCO_CLASSES``.
        ann_id (int): Annotation id.
        image_id (int): Image id.
        height (int): Image height.
        width (int): Image width.

    Returns:
        dict: Annotation with a polygon ``segmentation`` and a ``bbox``
        ``[x, y, w, h]`` clipped to the image.
    """
    x0, y0 = np.maximum(polygon.min(axis=0), 0)
    x1, y1 = np.minimum(polygon.max(axis=0), [width, height])
    bbox = [x0, y0, x1 - x0, y1 - y0]
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=label + 1,
        segmentation=[[float(v) for v in polygon.ravel()]],
        area=round(float(_polygon_area(polygon)), 2),
        bbox=[round(float(v), 2) for v in bbox],
        iscrowd=0)


def _write_coco_split(root, split, num, seed, progress):
    """Write the images and the annotation file of one COCO split.

    Args:
        root (str): Dataset root.
        split (str): ``'train'`` or ``'val'``.
        num (int): Number of images.
        seed (int): Dataset seed.
        progress (bool): Whether to show a progress bar.

    Returns:
        int: Number of object instances.
    """
    os.makedirs(osp.join(root, f'{split}2017'), exist_ok=True)
    images, annotations = [], []
    for index in _indices(num, progress, f'tiny COCO {split}'):
        rng = _image_rng(seed, 'coco', split, index)
        height, width = COCO_IMAGE_SIZES[index % len(COCO_IMAGE_SIZES)]
        image, objects = _coco_image(rng, height, width)
        file_name = f'{index + 1:012d}.jpg'
        Image.fromarray(image).save(
            osp.join(root, f'{split}2017', file_name), quality=95)
        images.append(
            dict(
                id=index + 1, file_name=file_name, height=height, width=width))
        for label, polygon in objects:
            annotations.append(
                _coco_annotation(polygon, label,
                                 len(annotations) + 1, index + 1, height,
                                 width))
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(TINY_COCO_CLASSES)
    ]
    content = dict(
        info=dict(
            description=f'tiny COCO {split}', version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=categories)
    with open(
            osp.join(root, 'annotations', f'instances_{split}2017.json'),
            'w') as f:
        json.dump(content, f)
    return len(annotations)


def make_tiny_coco(root, num_train=48, num_val=16, seed=0, progress=True):
    """Write a tiny COCO-format instance segmentation dataset.

    Layout (what mmdet's ``_base_/datasets/coco_instance.py`` expects)::

        root/annotations/instances_train2017.json
        root/annotations/instances_val2017.json
        root/train2017/000000000001.jpg ...
        root/val2017/000000000001.jpg ...

    Each image (sizes from ``COCO_IMAGE_SIZES``) shows 1 to 4
    non-overlapping shapes of ``TINY_COCO_CLASSES``, 18 to 60 px across,
    each class in its own colour, on a textured background.

    Args:
        root (str): Output folder, created if needed.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        seed (int): Seed of all the randomness.
        progress (bool): Whether to show progress bars.

    Returns:
        dict: ``root`` and, per split, the number of ``images`` and
        ``instances``.
    """
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    nums = dict(train=num_train, val=num_val)
    instances = {
        split: _write_coco_split(root, split, nums[split], seed, progress)
        for split in _SPLITS
    }
    return dict(root=str(root), images=nums, instances=instances)


# ---------------------------------------------------------- Cityscapes ----


class _Canvas:
    """A label map and a flat-colour image drawn in lockstep.

    Args:
        height (int): Image height.
        width (int): Image width.
    """

    def __init__(self, height, width):
        self.label = Image.new('L', (width, height), SKY)
        self.flat = Image.new('RGB', (width, height))
        self._draws = (ImageDraw.Draw(self.label), ImageDraw.Draw(self.flat))

    def draw(self, kind, xy, class_id, colour):
        """Draw one primitive into both images.

        Args:
            kind (str): ``'polygon'``, ``'rectangle'`` or ``'ellipse'``.
            xy (list): Coordinates for :class:`PIL.ImageDraw.ImageDraw`.
            class_id (int): trainId written into the label map.
            colour (Sequence[float]): RGB written into the colour image.
        """
        fills = (class_id, tuple(int(c) for c in np.clip(colour, 0, 255)))
        for draw, fill in zip(self._draws, fills):
            getattr(draw, kind)(xy, fill=fill)


def _jitter(rng, colour, amount=15):
    """A colour with uniform per-channel jitter.

    Args:
        rng (numpy.random.Generator): Random generator.
        colour (Sequence[float]): RGB colour.
        amount (float): Maximum change per channel.

    Returns:
        numpy.ndarray: The jittered colour.
    """
    return np.asarray(colour) + rng.uniform(-amount, amount, 3)


def _draw_ground(canvas, rng, height, width):
    """Draw the sky, the sidewalk and a road towards a vanishing point.

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[float]: ``(horizon, vanish_x, left_slope, right_slope)``; the
        road spans ``vanish_x -/+ slope * (y - horizon)`` at row ``y``.
    """
    horizon = rng.uniform(0.38, 0.5) * height
    vanish_x = rng.uniform(0.35, 0.65) * width
    depth = height - horizon
    left, right = rng.uniform(0.3, 0.6, 2) * width / depth
    canvas.draw('rectangle', [0, 0, width, height], SKY,
                _jitter(rng, (95, 140, 200)))
    canvas.draw('rectangle', [0, horizon, width, height], SIDEWALK,
                _jitter(rng, (170, 160, 160)))
    canvas.draw('polygon', [(vanish_x - 1, horizon), (vanish_x + 1, horizon),
                            (vanish_x + right * depth, height),
                            (vanish_x - left * depth, height)], ROAD,
                _jitter(rng, (85, 85, 90), 8))
    _draw_lane_marks(canvas, rng, horizon, vanish_x, height)
    return horizon, vanish_x, left, right


def _draw_lane_marks(canvas, rng, horizon, vanish_x, height):
    """Draw white dashes (labelled road) along the road's centre line.

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        horizon (float): Row of the vanishing point.
        vanish_x (float): Column of the vanishing point.
        height (int): Image height.
    """
    slope = rng.uniform(-0.3, 0.3)
    colour = _jitter(rng, (215, 215, 210), 10)
    for start in np.arange(0.15, 1.0, 0.2):
        rows = horizon + (height - horizon) * np.array([start, start + 0.1])
        half = 0.3 + 2.0 * (rows - horizon) / (height - horizon)
        xs = vanish_x + slope * (rows - horizon)
        canvas.draw('polygon', [(xs[0] - half[0], rows[0]),
                                (xs[0] + half[0], rows[0]),
                                (xs[1] + half[1], rows[1]),
                                (xs[1] - half[1], rows[1])], ROAD, colour)


def _draw_buildings(canvas, rng, horizon, height, width):
    """Draw a row of rectangular buildings standing on the horizon.

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        horizon (float): Row of the horizon.
        height (int): Image height.
        width (int): Image width.
    """
    left = -rng.uniform(0, 0.1) * width
    while left < width:
        right = left + rng.uniform(0.08, 0.25) * width
        top = rng.uniform(0.05 * height, horizon - 0.08 * height)
        base = horizon + rng.uniform(0, 0.06) * height
        canvas.draw('rectangle', [left, top, right, base], BUILDING,
                    _jitter(rng, (125, 110, 100), 30))
        gap = rng.uniform(0.02, 0.1) * width if rng.random() < 0.3 else 0
        left = right + gap


def _draw_trees(canvas, rng, horizon, height, width):
    """Draw 1 to 4 elliptic tree crowns near the horizon.

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        horizon (float): Row of the horizon.
        height (int): Image height.
        width (int): Image width.
    """
    for _ in range(rng.integers(1, 5)):
        x = rng.uniform(0, width)
        y = horizon - rng.uniform(0, 0.15) * height
        rx = rng.uniform(0.04, 0.09) * width
        ry = rx * rng.uniform(0.8, 1.3)
        canvas.draw('ellipse', [x - rx, y - ry, x + rx, y + ry], VEGETATION,
                    _jitter(rng, (60, 120, 50), 20))


def _draw_car(canvas, rng, x, base, size):
    """Draw a car (body, cabin and wheels, all labelled car).

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        x (float): Column of the car's centre.
        base (float): Row of the car's bottom.
        size (float): Width of the car.
    """
    body = _jitter(rng, _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))])
    half, tall = size / 2, size * rng.uniform(0.45, 0.6)
    cabin_top, body_top = base - tall, base - 0.6 * tall
    canvas.draw('polygon', [(x - 0.3 * half, cabin_top),
                            (x + 0.3 * half, cabin_top),
                            (x + 0.7 * half, body_top),
                            (x - 0.7 * half, body_top)], CAR,
                _jitter(rng, (45, 60, 75), 10))
    canvas.draw('rectangle',
                [x - half, body_top, x + half, base - 0.15 * tall], CAR, body)
    wheel = 0.2 * tall
    for wx in (x - 0.6 * half, x + 0.6 * half):
        canvas.draw('ellipse',
                    [wx - wheel, base - 2 * wheel, wx + wheel, base], CAR,
                    (20, 20, 20))


def _draw_person(canvas, rng, x, base, size):
    """Draw a person (legs, torso and head, all labelled person).

    Args:
        canvas (_Canvas): Where to draw.
        rng (numpy.random.Generator): Random generator.
        x (float): Column of the person's centre.
        base (float): Row of the person's feet.
        size (float): Height of the person.
    """
    half = 0.18 * size
    canvas.draw('rectangle',
                [x - 0.7 * half, base - 0.45 * size, x + 0.7 * half, base],
                PERSON, _jitter(rng, (45, 45, 65)))
    canvas.draw('rectangle',
                [x - half, base - 0.8 * size, x + half, base - 0.45 * size],
                PERSON, rng.uniform(40, 220, 3))
    head = 0.1 * size
    canvas.draw('ellipse',
                [x - head, base - size, x + head, base - size + 2 * head],
                PERSON, _jitter(rng, (220, 180, 150)))


def _sample_things(rng, ground, height, width):
    """Random cars on the road and persons on the sidewalk.

    Args:
        rng (numpy.random.Generator): Random generator.
        ground (tuple[float]): What :func:`_draw_ground` returned.
        height (int): Image height.
        width (int): Image width.

    Returns:
        list[tuple]: ``(base, draw_fn, x, size)`` sorted far to near.
    """
    horizon, vanish_x, left, right = ground
    things = []
    for is_car in [True] * rng.integers(0, 4) + [False] * rng.integers(0, 4):
        base = rng.uniform(horizon + 0.25 * (height - horizon), height - 2)
        depth = base - horizon
        scale = depth / (height - horizon)
        if is_car:
            size = max(8.0, 0.22 * width * scale * rng.uniform(0.8, 1.2))
            low = max(vanish_x - left * depth + size / 2, size / 2)
            high = min(vanish_x + right * depth - size / 2, width - size / 2)
        else:
            size = max(8.0, 0.3 * height * scale * rng.uniform(0.8, 1.2))
            side = rng.random() < 0.5
            low = vanish_x + right * depth + 3 if side else 3
            high = width - 3 if side else vanish_x - left * depth - 3
        if low < high:
            things.append((base, _draw_car if is_car else _draw_person,
                           rng.uniform(low, high), size))
    return sorted(things, key=lambda thing: thing[0])


def _texture(rng, label):
    """Per-pixel brightness factors that give each class its own texture.

    Args:
        rng (numpy.random.Generator): Random generator.
        label (numpy.ndarray): Label map of shape ``(height, width)``.

    Returns:
        numpy.ndarray: Factors of shape ``(height, width)``.
    """
    height, width = label.shape
    ys, xs = np.mgrid[:height, :width]
    period = rng.integers(5, 9, 2)
    windows = (xs % period[0] < period[0] // 2) & (ys % period[1] < 3)
    tiles = (xs % rng.integers(6, 10) == 0) | (ys % rng.integers(4, 7) == 0)
    sky = 0.8 + 0.4 * ys / height + 0.15 * _smooth_noise(
        rng, height, width, 3)[..., 0]
    leaves = 0.6 + 0.7 * _smooth_noise(rng, height, width, width // 4)[..., 0]
    asphalt = rng.uniform(0.85, 1.15, (height, width))
    textures = {
        SKY: sky,
        BUILDING: np.where(windows, 0.6, 1.0),
        VEGETATION: leaves,
        ROAD: asphalt,
        SIDEWALK: np.where(tiles, 0.8, 1.0)
    }
    factors = np.ones((height, width))
    for class_id, texture in textures.items():
        factors[label == class_id] = texture[label == class_id]
    return factors


def _ignore_band(label):
    """Set the one-pixel ring around cars and persons to ignore.

    Args:
        label (numpy.ndarray): Label map, changed in place.
    """
    thing = np.isin(label, (PERSON, CAR))
    grown = thing.copy()
    grown[1:] |= thing[:-1]
    grown[:-1] |= thing[1:]
    grown[:, 1:] |= thing[:, :-1]
    grown[:, :-1] |= thing[:, 1:]
    label[grown & ~thing] = IGNORE_INDEX


def _cityscapes_image(rng, height, width):
    """Draw one street scene.

    Args:
        rng (numpy.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[numpy.ndarray]: The ``uint8`` RGB image and the ``uint8``
        label map of trainIds.
    """
    canvas = _Canvas(height, width)
    ground = _draw_ground(canvas, rng, height, width)
    _draw_buildings(canvas, rng, ground[0], height, width)
    _draw_trees(canvas, rng, ground[0], height, width)
    for base, draw_fn, x, size in _sample_things(rng, ground, height, width):
        draw_fn(canvas, rng, x, base, size)
    label = np.array(canvas.label)
    image = np.array(canvas.flat, dtype=float)
    image *= _texture(rng, label)[..., None] * rng.uniform(0.85, 1.15)
    _ignore_band(label)
    return _to_uint8(image, rng, 5.0), label


def _write_cityscapes_split(root, split, num, seed, progress):
    """Write the images and label maps of one Cityscapes split.

    Args:
        root (str): Dataset root.
        split (str): ``'train'`` or ``'val'``.
        num (int): Number of images.
        seed (int): Dataset seed.
        progress (bool): Whether to show a progress bar.
    """
    image_dir = osp.join(root, 'leftImg8bit', split, 'tinycity')
    label_dir = osp.join(root, 'gtFine', split, 'tinycity')
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    for index in _indices(num, progress, f'tiny Cityscapes {split}'):
        rng = _image_rng(seed, 'cityscapes', split, index)
        size = CITYSCAPES_IMAGE_SIZES[index % len(CITYSCAPES_IMAGE_SIZES)]
        image, label = _cityscapes_image(rng, *size)
        # frame 19 like the annotated frames of Cityscapes
        stem = f'tinycity_{index:06d}_000019'
        Image.fromarray(image).save(
            osp.join(image_dir, f'{stem}_leftImg8bit.png'))
        Image.fromarray(label).save(
            osp.join(label_dir, f'{stem}_gtFine_labelTrainIds.png'))


def make_tiny_cityscapes(root, num_train=32, num_val=8, seed=0, progress=True):
    """Write a tiny Cityscapes-format semantic segmentation dataset.

    Layout (what mmseg's ``CityscapesDataset`` expects)::

        root/leftImg8bit/{train,val}/tinycity/
            tinycity_{seq:06d}_000019_leftImg8bit.png
        root/gtFine/{train,val}/tinycity/
            tinycity_{seq:06d}_000019_gtFine_labelTrainIds.png

    Scenes (sizes from ``CITYSCAPES_IMAGE_SIZES``) hold sky, buildings,
    vegetation, road with lane marks, sidewalk, cars and persons, each
    class with its own colour and texture. Labels are single-channel
    trainIds; the one-pixel ring around cars and persons is 255 (ignore).

    Args:
        root (str): Output folder, created if needed.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        seed (int): Seed of all the randomness.
        progress (bool): Whether to show progress bars.

    Returns:
        dict: ``root`` and the number of ``images`` per split.
    """
    nums = dict(train=num_train, val=num_val)
    for split in _SPLITS:
        _write_cityscapes_split(root, split, nums[split], seed, progress)
    return dict(root=str(root), images=nums)


# ---------------------------------------------------------------- both ----


def _read_marker(folder):
    """The content of a dataset's completion marker.

    Args:
        folder (str): Dataset folder.

    Returns:
        dict | None: The marker, or None when there is none.
    """
    try:
        with open(osp.join(folder, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _make_once(folder, make_fn, args, progress, force):
    """Make one dataset unless an identical one is complete already.

    The dataset is written into ``<folder>.tmp`` with its marker last, and
    then renamed to ``folder``, so an interrupted run leaves nothing that
    looks complete.

    Args:
        folder (str): Dataset folder.
        make_fn (Callable): ``make_tiny_coco`` or ``make_tiny_cityscapes``.
        args (dict): ``num_train``, ``num_val`` and ``seed`` for ``make_fn``.
        progress (bool): Whether to show progress bars.
        force (bool): Whether to make it even when complete.

    Returns:
        dict: What ``make_fn`` returned, plus ``skipped``.
    """
    marker = _read_marker(folder)
    if not force and marker is not None and \
            marker['version'] == GENERATOR_VERSION and marker['args'] == args:
        return dict(marker['summary'], root=folder, skipped=True)
    tmp = folder + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    summary = make_fn(tmp, progress=progress, **args)
    summary.pop('root')
    with open(osp.join(tmp, MARKER), 'w') as f:
        json.dump(
            dict(version=GENERATOR_VERSION, args=args, summary=summary), f)
    if osp.exists(folder):
        shutil.rmtree(folder)
    os.rename(tmp, folder)
    return dict(summary, root=folder, skipped=False)


def make_tiny_datasets(root,
                       seed=0,
                       progress=True,
                       force=False,
                       num_coco=(48, 16),
                       num_cityscapes=(32, 8)):
    """Make the tiny COCO and Cityscapes datasets, each at most once.

    They go to ``root/coco`` and ``root/cityscapes``. A dataset is skipped
    when its folder holds a ``.complete`` marker of the same generator
    version and arguments; otherwise it is (re)generated in a temporary
    sibling folder that replaces it when done.

    Args:
        root (str): Parent folder of both datasets.
        seed (int): Seed of all the randomness.
        progress (bool): Whether to show progress bars.
        force (bool): Whether to regenerate complete datasets too.
        num_coco (tuple[int]): Numbers of COCO ``(train, val)`` images.
        num_cityscapes (tuple[int]): Numbers of Cityscapes ``(train, val)``
            images.

    Returns:
        dict: Per dataset (``'coco'``, ``'cityscapes'``), its ``root``,
        counts and whether it was ``skipped``.
    """
    jobs = (('coco', make_tiny_coco, num_coco),
            ('cityscapes', make_tiny_cityscapes, num_cityscapes))
    summary = {}
    for name, make_fn, (num_train, num_val) in jobs:
        args = dict(num_train=num_train, num_val=num_val, seed=seed)
        summary[name] = _make_once(
            osp.join(str(root), name), make_fn, args, progress, force)
    return summary
