"""Synthetic degradations of clean images, pluggable by name.

Every degradation is a function ``fn(clean, rng, **options) -> (degraded, info)`` where
``clean`` is HxWx3 float in [0, 1], ``rng`` a ``numpy.random.Generator`` (all randomness comes
from it, so a seed fixes the result), ``degraded`` is HxWx3 float32 in [0, 1] and ``info`` a
dict of what was drawn, with at least ``"domain"`` (the weather type, e.g. "haze").
``DEGRADATIONS`` maps the names a config may use to these functions: add rain or snow by
writing such a function and adding it to the dict.

Haze follows the atmospheric scattering model (Koschmieder; McCartney 1976; used by RESIDE,
Li et al. 2019):

    I(x) = J(x) t(x) + A (1 - t(x)),    t(x) = exp(-beta(x) d(x))

with J the clean image, A the global airlight and d a smooth relative depth map.
Documented ranges (drawn uniformly):
- depth d: a blend of a vertical gradient (far at the top) and a smooth random field,
  rescaled to [0.1, 1.0];
- beta (scattering coefficient): [0.5, 2.0], so the farthest point keeps t in [0.14, 0.61];
- airlight A: grey level in [0.7, 1.0] plus a per-channel tint in [-0.05, 0.05], clipped to 1;
- non-homogeneous haze (NH-HAZE-like patches): beta(x) = beta * (1 + v (2 f(x) - 1)), with
  f a smooth random field in [0, 1] and the variation v in [0.4, 0.8].
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

BETA_RANGE = (0.5, 2.0)
AIRLIGHT_RANGE = (0.7, 1.0)
AIRLIGHT_TINT = 0.05
DEPTH_RANGE = (0.1, 1.0)
VARIATION_RANGE = (0.4, 0.8)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """A smooth random HxW field in [0, 1]: a ``cells`` x ``cells`` grid of uniform values,
    upsampled with cubic splines, then min-max normalised."""
    h, w = shape
    coarse = rng.random((cells, cells))
    field = ndimage.zoom(coarse, (h / cells, w / cells), order=3, mode="nearest", grid_mode=True)
    field = field[:h, :w]
    lo, hi = field.min(), field.max()
    return ((field - lo) / (hi - lo + 1e-12)).astype(np.float32)


def random_depth(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth relative depth map in DEPTH_RANGE: far at the top of the frame, with random
    smooth variation (the blend weight of the gradient is drawn in [0.3, 0.7])."""
    h, w = shape
    gradient = np.repeat(np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None], w, axis=1)
    weight = rng.uniform(0.3, 0.7)
    depth = weight * gradient + (1 - weight) * smooth_field(shape, rng, cells=int(rng.integers(2, 5)))
    depth = (depth - depth.min()) / (depth.max() - depth.min() + 1e-12)
    lo, hi = DEPTH_RANGE
    return (lo + (hi - lo) * depth).astype(np.float32)


def scatter(clean: np.ndarray, transmission: np.ndarray, airlight) -> np.ndarray:
    """The atmospheric scattering model I = J t + A (1 - t); ``transmission`` is HxW (or HxWx1),
    ``airlight`` a scalar or a 3-vector."""
    t = transmission[..., None] if transmission.ndim == 2 else transmission
    a = np.asarray(airlight, dtype=np.float32).reshape(1, 1, -1)
    return (clean * t + a * (1.0 - t)).astype(np.float32)


def add_haze(clean: np.ndarray, rng: np.random.Generator, *, beta=None, airlight=None, depth=None,
             nonhomogeneous: bool = False, beta_range=BETA_RANGE, airlight_range=AIRLIGHT_RANGE,
             airlight_tint: float = AIRLIGHT_TINT, variation_range=VARIATION_RANGE):
    """Haze by the scattering model; ``beta`` (scalar or HxW map), ``airlight`` (scalar or
    3-vector) and ``depth`` (HxW) are drawn from the documented ranges unless given.
    ``nonhomogeneous``: the scattering coefficient varies smoothly over the image."""
    h, w = clean.shape[:2]
    if depth is None:
        depth = random_depth((h, w), rng)
    if beta is None:
        beta = rng.uniform(*beta_range)
        if nonhomogeneous:
            variation = rng.uniform(*variation_range)
            field = smooth_field((h, w), rng, cells=int(rng.integers(3, 7)))
            beta = beta * (1.0 + variation * (2.0 * field - 1.0))
    if airlight is None:
        grey = rng.uniform(*airlight_range)
        airlight = np.clip(grey + rng.uniform(-airlight_tint, airlight_tint, size=3), 0.0, 1.0)
    transmission = np.exp(-np.asarray(beta, dtype=np.float32) * depth).astype(np.float32)
    hazy = np.clip(scatter(clean, transmission, airlight), 0.0, 1.0)
    info = {"domain": "haze", "transmission": transmission, "airlight": np.asarray(airlight),
            "beta": beta, "depth": depth}
    return hazy, info


def add_nonhomogeneous_haze(clean: np.ndarray, rng: np.random.Generator, **options):
    """Haze whose density varies over the image (NH-HAZE-like): ``add_haze(nonhomogeneous=True)``."""
    return add_haze(clean, rng, nonhomogeneous=True, **options)


#: degradation name (as written in configs) -> function(clean, rng) -> (degraded, info)
DEGRADATIONS: dict[str, Callable] = {
    "haze": add_haze,
    "nh_haze": add_nonhomogeneous_haze,
}
