"""Real photographs shipped inside installed packages, and clean crops from them.

Nothing is downloaded: every photograph is a file inside scikit-image, scikit-learn or
matplotlib. Photographs of one scene (the two motorcycle stereo views) share a ``scene`` so
that a split never puts one scene on both sides.

Default split (no test content is seen in training):
- train: astronaut, coffee, rocket, china, motorcycle_left, motorcycle_right
- val:   grace_hopper
- test:  chelsea, flower
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from kdvision.data.image_files import read_rgb


def _skimage(name: str):
    def load() -> np.ndarray:
        import skimage.data
        return getattr(skimage.data, name)()
    return load


def _motorcycle(view: int):
    def load() -> np.ndarray:
        import skimage.data
        return skimage.data.stereo_motorcycle()[view]
    return load


def _sklearn(filename: str):
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image
        return load_sample_image(filename)
    return load


def _matplotlib(filename: str):
    def load() -> np.ndarray:
        from matplotlib import cbook
        path = cbook.get_sample_data(filename, asfileobj=False)
        return read_rgb(path)
    return load


#: name -> (loader returning HxWx3 uint8, scene)
PHOTOS = {
    "astronaut": (_skimage("astronaut"), "astronaut"),        # 512x512, scikit-image
    "coffee": (_skimage("coffee"), "coffee"),                 # 400x600, scikit-image
    "chelsea": (_skimage("chelsea"), "chelsea"),              # 300x451, scikit-image
    "rocket": (_skimage("rocket"), "rocket"),                 # 427x640, scikit-image
    "motorcycle_left": (_motorcycle(0), "motorcycle"),        # 500x741, scikit-image
    "motorcycle_right": (_motorcycle(1), "motorcycle"),       # 500x741, scikit-image
    "china": (_sklearn("china.jpg"), "china"),                # 427x640, scikit-learn
    "flower": (_sklearn("flower.jpg"), "flower"),             # 427x640, scikit-learn
    "grace_hopper": (_matplotlib("grace_hopper.jpg"), "grace_hopper"),  # 600x512, matplotlib
}

DEFAULT_SPLITS = {
    "train": ["astronaut", "coffee", "rocket", "china", "motorcycle_left", "motorcycle_right"],
    "val": ["grace_hopper"],
    "test": ["chelsea", "flower"],
}

#: photographs are also cropped at these down-scalings, for more variety of content scale
CROP_SCALES = (1.0, 0.75, 0.5)


@lru_cache(maxsize=None)
def load_photo(name: str, scale: float = 1.0) -> np.ndarray:
    """The photograph as HxWx3 uint8, resized by ``scale`` (Lanczos) when below 1."""
    image = np.ascontiguousarray(PHOTOS[name][0]()[..., :3])
    if scale != 1.0:
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    image.setflags(write=False)
    return image


def smallest_side(names: list[str], scales=CROP_SCALES) -> int:
    """The shortest side among the photographs at the smallest scale (the largest valid crop)."""
    return min(max(1, round(min(load_photo(n).shape[:2]) * min(scales))) for n in names)


def random_crop(name: str, size: int, rng: np.random.Generator, scales=CROP_SCALES) -> np.ndarray:
    """A ``size`` x ``size`` clean crop (float32 in [0, 1]) at a random scale and position."""
    image = load_photo(name, float(scales[rng.integers(len(scales))]))
    h, w = image.shape[:2]
    top, left = rng.integers(h - size + 1), rng.integers(w - size + 1)
    return image[top:top + size, left:left + size].astype(np.float32) / 255.0
