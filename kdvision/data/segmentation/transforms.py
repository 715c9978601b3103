"""Joint image + label-map transforms for segmentation training (PSPNet / APD augmentation).

Each transform takes and returns ``(image, mask)``: image a float CHW tensor (already
normalised, so zero padding is the mean colour), mask a LongTensor HxW. Images are resampled
bilinearly; label maps only ever by nearest neighbour, and pixels brought in from outside the
image (padding, rotation corners) get the ignore label. Random draws come from the global
torch RNG, which the trainer seeds per epoch and worker.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]):
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    # "nearest-exact" samples pixel centres like bilinear (align_corners=False); "nearest" is shifted
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
    return image, mask


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, mask):
        for t in self.transforms:
            image, mask = t(image, mask)
        return image, mask


class RandomScale:
    """Resize by a factor drawn uniformly from [low, high] (0.5-2.0 in PSPNet/APD)."""

    def __init__(self, low: float = 0.5, high: float = 2.0):
        self.low, self.high = low, high

    def __call__(self, image, mask):
        s = uniform(self.low, self.high)
        h, w = mask.shape
        return resize_pair(image, mask, (max(1, round(h * s)), max(1, round(w * s))))


class RandomRotate:
    """Rotate by an angle in [-degrees, degrees] with probability p; corners get the ignore label."""

    def __init__(self, degrees: float = 10.0, p: float = 0.5, ignore_index: int = 255):
        self.degrees, self.p, self.ignore_index = degrees, p, ignore_index

    def __call__(self, image, mask):
        if self.degrees <= 0 or float(torch.rand(())) >= self.p:
            return image, mask
        a = math.radians(uniform(-self.degrees, self.degrees))
        h, w = mask.shape
        # affine_grid works in normalised coordinates; correct the aspect ratio of the rotation
        theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                              [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=torch.float32)
        grid = F.affine_grid(theta[None], [1, 1, h, w], align_corners=False)
        image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        # shift labels by one so that the zero padding marks "outside" unambiguously
        shifted = F.grid_sample(mask[None, None].float() + 1, grid, mode="nearest", padding_mode="zeros",
                                align_corners=False)[0, 0].long()
        mask = torch.where(shifted == 0, torch.full_like(shifted, self.ignore_index), shifted - 1)
        return image, mask


class RandomGaussianBlur:
    """Blur the image (not the mask) with a 5x5 Gaussian, sigma 1.1, with probability p
    (OpenCV's sigma for a 5-pixel kernel, as in the PSPNet/APD augmentation)."""

    def __init__(self, p: float = 0.5, kernel: int = 5, sigma: float = 1.1):
        self.p = p
        x = torch.arange(kernel, dtype=torch.float32) - (kernel - 1) / 2
        g = torch.exp(-x ** 2 / (2 * sigma ** 2))
        self.kernel = g / g.sum()

    def __call__(self, image, mask):
        if float(torch.rand(())) >= self.p:
            return image, mask
        c = image.shape[0]
        k = self.kernel.numel()
        pad = k // 2
        x = F.pad(image[None], (pad, pad, pad, pad), mode="replicate")
        x = F.conv2d(x, self.kernel.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
        x = F.conv2d(x, self.kernel.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
        return x[0], mask


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image, mask):
        if float(torch.rand(())) < self.p:
            return image.flip(-1), mask.flip(-1)
        return image, mask


class RandomCrop:
    """Random ``size`` x ``size`` crop; smaller images are first padded (image 0 = mean colour,
    mask ``ignore_index``)."""

    def __init__(self, size: int, ignore_index: int = 255):
        self.size, self.ignore_index = size, ignore_index

    def __call__(self, image, mask):
        h, w = mask.shape
        ph, pw = max(0, self.size - h), max(0, self.size - w)
        if ph or pw:
            pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
            image = F.pad(image, pads, value=0.0)
            mask = F.pad(mask, pads, value=self.ignore_index)
            h, w = mask.shape
        top = int(torch.randint(0, h - self.size + 1, ()))
        left = int(torch.randint(0, w - self.size + 1, ()))
        sl = (slice(top, top + self.size), slice(left, left + self.size))
        return image[:, sl[0], sl[1]], mask[sl]


def train_transform(crop_size: int, scale_min: float = 0.5, scale_max: float = 2.0, rotate: float = 10.0,
                    blur: bool = True, flip: bool = True, ignore_index: int = 255) -> Compose:
    """The PSPNet/APD training augmentation: scale, rotate, blur, flip, crop (in that order)."""
    steps = [RandomScale(scale_min, scale_max)]
    if rotate > 0:
        steps.append(RandomRotate(rotate, ignore_index=ignore_index))
    if blur:
        steps.append(RandomGaussianBlur())
    if flip:
        steps.append(RandomHorizontalFlip())
    steps.append(RandomCrop(crop_size, ignore_index))
    return Compose(steps)
