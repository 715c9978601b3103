"""The project's own frozen VGG-19 feature extractor (Simonyan & Zisserman, ICLR 2015).

Used as the perceptual space of contrastive regularisation (AECR-Net, CVPR 2021; two-stage
knowledge learning, Chen et al., CVPR 2022): the outputs of relu1_1, relu2_1, relu3_1,
relu4_1 and relu5_1.

The layers are numbered exactly like torchvision's ``vgg19().features`` (conv1_1 is
``features.0``, relu5_1 is ``features.29``), so a state dict saved from torchvision
(``features.N.weight`` / ``features.N.bias``; extra keys such as ``classifier.*`` are ignored)
loads as it is, from a local ``.pth``/``.pt`` or ``.safetensors`` file. Nothing is ever
downloaded. Without weights the features mean nothing; running untrained needs
``allow_untrained=True`` and prints a warning.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.safe_load import check_dtypes, read_torch_file

#: torchvision's configuration "E" up to relu5_1: conv widths, "M" = 2x2 max-pool.
_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
#: index in ``features`` of each returned ReLU
TAP_INDICES = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in _LAYOUT:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = v
    return nn.Sequential(*layers)


def required_keys() -> list[str]:
    """The state-dict keys (torchvision layout) the extractor needs."""
    feats = _make_features()
    return [f"features.{k}" for k in feats.state_dict()]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local ``.safetensors`` or torch file (a plain dict or one under "state_dict")."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"VGG-19 weight file not found: {path} (kdvision never downloads it; "
                        f"save torchvision's vgg19 state dict there)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
            raise UserError(f"VGG-19 weight file {path} cannot be read: {type(e).__name__}: {e}") from None
    else:
        state = read_torch_file(path, "VGG-19 weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"VGG-19 weight file {path} holds a {type(state).__name__}, not a state dict")
    return state


class VGG19Features(nn.Module):
    """Frozen VGG-19 returning [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1].

    ``normalize_input``: subtract the ImageNet mean and divide by its std first. The official
    two-stage code feeds [0, 1] images unnormalised, hence the default False.
    """

    layers = tuple(TAP_INDICES)

    def __init__(self, weights: str | None = None, allow_untrained: bool = False,
                 normalize_input: bool = False):
        super().__init__()
        self.features = _make_features()
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights:
            self.load_torchvision(weights)
        elif allow_untrained:
            warnings.warn("VGG-19 runs with random weights (allow_untrained): the perceptual and "
                          "contrastive terms do not mean what the papers mean", UserWarning, stacklevel=2)
        else:
            raise UserError("no VGG-19 weights given: name a local file in torchvision's vgg19 "
                            "state-dict layout (features.N.weight), or allow untrained VGG explicitly")
        self.requires_grad_(False)
        self.eval()

    def load_torchvision(self, path: str | Path) -> None:
        state = read_state_dict(path)
        needed = required_keys()
        missing = [k for k in needed if k not in state]
        if missing:
            shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            raise UserError(f"VGG-19 weight file {path} is not in torchvision's vgg19 layout: "
                            f"missing {len(missing)} keys ({shown})")
        own = self.features.state_dict()
        for k in needed:
            got, want = tuple(state[k].shape), tuple(own[k[len("features."):]].shape)
            if got != want:
                raise UserError(f"VGG-19 weight file {path}: '{k}' has shape {got}, expected {want}")
        check_dtypes({k[len("features."):]: state[k] for k in needed}, own, str(path))
        self.features.load_state_dict({k[len("features."):]: state[k].float() for k in needed})

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.normalize_input:
            x = (x - self.mean) / self.std
        out = []
        last = max(TAP_INDICES.values())
        taps = set(TAP_INDICES.values())
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                out.append(x)
            if i == last:
                break
        return out
