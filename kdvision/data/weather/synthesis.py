"""Synthetic rain and snow on clean photographs, beside the restoration package's haze.

Same contract as ``kdvision.data.restoration.degradations``: ``fn(clean, rng, **options) ->
(degraded, info)``, ``clean`` HxWx3 float in [0, 1], every random draw from the
``numpy.random.Generator`` ``rng`` (a seed fixes the result), ``degraded`` HxWx3 float32 in
[0, 1], ``info["domain"]`` the weather type. Lengths and sizes scale with the image's short
side ``s`` so that a 64-pixel crop and a 512-pixel photograph look alike.

Rain (additive streak model of Rain100L/H, Yang et al. CVPR 2017: O = B + sum_l R_l):
``layers`` in [1, 3] streak layers; one wind angle for the scene in [-30, 30] degrees from
vertical, each layer within +-5 degrees of it; per layer: drop density [0.002, 0.008] per pixel,
streak length [0.06, 0.20] s (at least 3 px), brightness [0.25, 0.7], a Gaussian width blur
sigma [0.3, 0.8] px; each drop is smeared along the angle by a line (motion-blur) kernel; the
layers add up on the image, clipped to 1.

Snow (Snow100K's mask composition, Liu et al. TIP 2018: I = J (1 - M) + c M): ``layers`` in
[1, 3] of particles, from small far flakes to large near ones: radii [0.4, 1.0], [1.0, 2.0],
[2.0, 3.5] x s/128 px (s/128 at least 0.75, radii at least 0.5 px; three size bins per
layer), densities [4e-3, 1.2e-2], [8e-4, 3e-3], [1e-4, 6e-4] per pixel, per-flake opacity
[0.5, 1.0], a defocus blur sigma [0, 0.5], [0.3, 1.0], [0.8, 2.0] x s/128 px and a short fall
streak; a layer whose density drew no flake (small crops) gets one, so every snowy image has
snow; layer masks combine as M = 1 - prod(1 - M_l); snow colour c a grey in [0.85, 1.0].

``severity="heavy"`` (in the manner of Rain100H and Snow100K-L rather than Rain100L and
Snow100K-S): rain has [2, 4] layers of density [0.004, 0.010], length [0.10, 0.25] s,
brightness [0.45, 0.8] and sigma [0.4, 1.0] px; snow [2, 3] particle layers with 2x the
densities, 1.25x the radii and opacity [0.7, 1.0]. On the 64-px test crops of the embedded
weather set the degraded input's PSNR is 13.9 dB for heavy rain (Rain100H's inputs: about 13.6)
and 17.8 dB for heavy snow, against 21.6 and 25.1 dB for the light default (the set above).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

RAIN_LAYERS = (1, 3)
RAIN_ANGLE = (-30.0, 30.0)  # degrees from vertical
RAIN_ANGLE_JITTER = 5.0
RAIN_DENSITY = (0.002, 0.008)
RAIN_LENGTH = (0.06, 0.20)  # x short side
RAIN_BRIGHTNESS = (0.25, 0.7)
RAIN_WIDTH_SIGMA = (0.3, 0.8)

SNOW_LAYERS = (1, 3)
SNOW_RADIUS = ((0.4, 1.0), (1.0, 2.0), (2.0, 3.5))  # x short side / 128
SNOW_DENSITY = ((4e-3, 1.2e-2), (8e-4, 3e-3), (1e-4, 6e-4))
SNOW_BLUR = ((0.0, 0.5), (0.3, 1.0), (0.8, 2.0))  # x short side / 128
SNOW_OPACITY = (0.5, 1.0)
SNOW_COLOUR = (0.85, 1.0)

SEVERITIES = ("light", "heavy")
RAIN = {"light": {"layers": RAIN_LAYERS, "density": RAIN_DENSITY, "length": RAIN_LENGTH,
                  "brightness": RAIN_BRIGHTNESS, "sigma": RAIN_WIDTH_SIGMA},
        "heavy": {"layers": (2, 4), "density": (0.004, 0.010), "length": (0.10, 0.25),
                  "brightness": (0.45, 0.8), "sigma": (0.4, 1.0)}}
SNOW = {"light": {"layers": SNOW_LAYERS, "density_scale": 1.0, "radius_scale": 1.0, "opacity": SNOW_OPACITY},
        "heavy": {"layers": (2, 3), "density_scale": 2.0, "radius_scale": 1.25, "opacity": (0.7, 1.0)}}


def _severity(table: dict, severity: str) -> dict:
    if severity not in table:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return table[severity]


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A motion-blur kernel: a 1-pixel line of ``length`` at ``angle_deg`` from vertical, peak 1."""
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    theta = math.radians(angle_deg)
    for t in np.linspace(-length / 2, length / 2, max(2, int(4 * length))):
        y, x = c + t * math.cos(theta), c + t * math.sin(theta)
        y0, x0 = int(math.floor(y)), int(math.floor(x))
        fy, fx = y - y0, x - x0
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                k[y0 + dy, x0 + dx] = max(k[y0 + dy, x0 + dx], w)
    return k / k.max()


def disk_kernel(radius: float) -> np.ndarray:
    """A disk of ``radius`` px with a one-pixel soft edge, peak 1."""
    r = int(math.ceil(radius + 1))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    d = np.sqrt(yy ** 2 + xx ** 2)
    return np.clip(radius + 0.5 - d, 0.0, 1.0).astype(np.float32)


def rain_layers(shape: tuple[int, int], rng: np.random.Generator, layers: int | None = None,
                severity: str = "light") -> tuple[list[np.ndarray], dict]:
    """The streak layers R_l (HxW, >= 0) and what was drawn."""
    h, w = shape
    s = min(h, w)
    p = _severity(RAIN, severity)
    n = int(rng.integers(p["layers"][0], p["layers"][1] + 1)) if layers is None else layers
    wind = rng.uniform(*RAIN_ANGLE)
    out, drawn = [], []
    for _ in range(n):
        angle = wind + rng.uniform(-RAIN_ANGLE_JITTER, RAIN_ANGLE_JITTER)
        density = rng.uniform(*p["density"])
        length = max(3.0, rng.uniform(*p["length"]) * s)
        brightness = rng.uniform(*p["brightness"])
        sigma = rng.uniform(*p["sigma"])
        drops = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.6, 1.0, (h, w)).astype(np.float32)
        streaks = ndimage.convolve(drops, line_kernel(length, angle), mode="wrap")
        streaks = ndimage.gaussian_filter(streaks, sigma, mode="wrap")
        peak = streaks.max()
        if peak > 0:
            streaks = streaks * (brightness / peak)
        out.append(streaks.astype(np.float32))
        drawn.append({"angle": angle, "density": density, "length": length, "brightness": brightness, "sigma": sigma})
    return out, {"wind": wind, "layers": drawn}


def add_rain(clean: np.ndarray, rng: np.random.Generator, *, layers: int | None = None, severity: str = "light"):
    """Rain: O = clip(B + sum_l R_l) with oriented, motion-blurred streak layers (see module doc)."""
    streaks, drawn = rain_layers(clean.shape[:2], rng, layers, severity)
    total = np.sum(streaks, axis=0)
    rainy = np.clip(clean.astype(np.float32) + total[..., None], 0.0, 1.0).astype(np.float32)
    return rainy, {"domain": "rain", "streaks": total, **drawn}


def snow_mask(shape: tuple[int, int], rng: np.random.Generator, layers: int | None = None,
              severity: str = "light") -> tuple[np.ndarray, dict]:
    """M in [0, 1] (HxW): particle layers of growing size and blur, M = 1 - prod(1 - M_l)."""
    h, w = shape
    scale = max(0.75, min(h, w) / 128)
    p = _severity(SNOW, severity)
    n = int(rng.integers(p["layers"][0], p["layers"][1] + 1)) if layers is None else layers
    kinds = sorted(rng.choice(3, size=n, replace=False).tolist())
    fall = rng.uniform(-20.0, 20.0)
    keep = np.ones((h, w), np.float32)
    drawn = []
    for kind in kinds:
        density = rng.uniform(*SNOW_DENSITY[kind]) * p["density_scale"]
        r_lo, r_hi = (max(0.5, v * scale * p["radius_scale"]) for v in SNOW_RADIUS[kind])
        blur = rng.uniform(*SNOW_BLUR[kind]) * scale
        layer = np.zeros((h, w), np.float32)
        for r_lo_bin, r_hi_bin in zip(np.linspace(r_lo, r_hi, 4)[:-1], np.linspace(r_lo, r_hi, 4)[1:]):
            flakes = (rng.random((h, w)) < density / 3).astype(np.float32)
            flakes *= rng.uniform(*p["opacity"], (h, w)).astype(np.float32)
            radius = rng.uniform(r_lo_bin, r_hi_bin)
            layer = np.maximum(layer, ndimage.grey_dilation(flakes, footprint=disk_kernel(radius) > 0, mode="wrap")
                               * 1.0)
        if not layer.any():  # sparse near flakes on a small crop: a drawn layer always has a flake
            flake = np.zeros((h, w), np.float32)
            flake[rng.integers(h), rng.integers(w)] = rng.uniform(*p["opacity"])
            radius = rng.uniform(r_lo, r_hi)
            layer = ndimage.grey_dilation(flake, footprint=disk_kernel(radius) > 0, mode="wrap")
        streak = max(1.0, 1.5 * scale * (kind + 1))
        layer = ndimage.convolve(layer, line_kernel(streak, fall) / line_kernel(streak, fall).sum(), mode="wrap")
        if blur > 0:
            layer = ndimage.gaussian_filter(layer, blur, mode="wrap")
        layer = np.clip(layer, 0.0, 1.0)
        keep *= 1.0 - layer
        drawn.append({"kind": int(kind), "density": density, "radius": (r_lo, r_hi), "blur": blur})
    return (1.0 - keep).astype(np.float32), {"fall": fall, "layers": drawn}


def add_snow(clean: np.ndarray, rng: np.random.Generator, *, layers: int | None = None, severity: str = "light"):
    """Snow: I = J (1 - M) + c M with a particle mask M (see module doc)."""
    mask, drawn = snow_mask(clean.shape[:2], rng, layers, severity)
    colour = np.float32(rng.uniform(*SNOW_COLOUR))
    m = mask[..., None]
    snowy = (clean.astype(np.float32) * (1.0 - m) + colour * m).astype(np.float32)
    return np.clip(snowy, 0.0, 1.0), {"domain": "snow", "mask": mask, "colour": float(colour), **drawn}
