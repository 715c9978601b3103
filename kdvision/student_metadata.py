"""What a deployed student needs to be used correctly, as a flat dict of strings.

Written into ``student.safetensors`` (safetensors metadata) by the trainer and into exported
files (ONNX ``metadata_props``, a TorchScript extra file, safetensors metadata) by ``kdvision
export``. Keys: ``format``, ``kdvision_version``, ``task``, ``model``, ``student`` (the model
spec as JSON), ``input_size`` ([C, H, W] as JSON), ``mean`` / ``std`` (the input
normalisation, JSON lists: the network reads ``(rgb / 255 - mean) / std``), and where the
data set has them ``num_classes`` and ``class_names`` (a JSON list).
"""
from __future__ import annotations

import json
from typing import Any

FORMAT = "kdvision-student"
#: restoration inputs are RGB in [0, 1], not normalised
IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def dataset_facts(dataset: Any) -> dict[str, Any]:
    """class names, class count and mean/std of a data set (looking inside wrappers)."""
    for _ in range(4):  # Subset / ConcatDataset style wrappers
        if any(hasattr(dataset, k) for k in ("class_names", "classes", "mean", "normalize")):
            break
        inner = getattr(dataset, "dataset", None) or (getattr(dataset, "datasets", None) or [None])[0]
        if inner is None:
            break
        dataset = inner
    facts: dict[str, Any] = {}
    names = getattr(dataset, "class_names", None) or getattr(dataset, "classes", None)
    if names is not None and all(isinstance(n, str) for n in names):
        facts["class_names"] = list(names)
    if getattr(dataset, "num_classes", None) is not None:
        facts["num_classes"] = int(dataset.num_classes)
    source = dataset if hasattr(dataset, "mean") else getattr(dataset, "normalize", None)
    if source is not None and hasattr(source, "mean") and hasattr(source, "std"):
        facts["mean"] = [round(float(v), 6) for v in _flat(source.mean)]
        facts["std"] = [round(float(v), 6) for v in _flat(source.std)]
    return facts


def _flat(values) -> list:
    return values.flatten().tolist() if hasattr(values, "flatten") else list(values)


def student_metadata(cfg, task, input_size: tuple[int, ...] | None = None,
                     extra: dict[str, str] | None = None) -> dict[str, str]:
    """The metadata dict (str -> str) for the student of ``cfg`` trained on ``task``'s data.

    ``input_size`` (C, H, W): given, else the shape of the first validation item; facts the
    data set cannot give (it is not on this machine) are left out."""
    from kdvision import __version__
    from kdvision.errors import UserError

    meta = {"format": FORMAT, "kdvision_version": str(__version__), "task": str(cfg.task),
            "model": str(cfg.student["name"]), "student": json.dumps(cfg.student, sort_keys=True)}
    facts: dict[str, Any] = {}
    try:
        val = task.datasets()["val"]
        facts = dataset_facts(val)
        if input_size is None:
            input_size = tuple(val[0]["input"].shape)
    except (UserError, OSError, KeyError, IndexError):  # data not here: export works, with less metadata
        pass
    if "mean" not in facts and cfg.task == "restoration":
        facts["mean"], facts["std"] = list(IDENTITY[0]), list(IDENTITY[1])
    if input_size is not None:
        meta["input_size"] = json.dumps([int(v) for v in input_size])
    for key in ("mean", "std", "class_names"):
        if key in facts:
            meta[key] = json.dumps(facts[key])
    if "num_classes" in facts:
        meta["num_classes"] = str(facts["num_classes"])
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    return meta


def describe(meta: dict[str, str]) -> str:
    """One line for people: task, classes, input size, mean/std, version."""
    parts = [f"task {meta.get('task', '?')}"]
    if "class_names" in meta:
        names = json.loads(meta["class_names"])
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} classes)" if len(names) > 12 else "")
        parts.append(f"classes {shown}")
    elif "num_classes" in meta:
        parts.append(f"{meta['num_classes']} classes")
    if "input_size" in meta:
        parts.append(f"input {'x'.join(str(v) for v in json.loads(meta['input_size']))}")
    if "mean" in meta:
        parts.append(f"mean {json.loads(meta['mean'])} std {json.loads(meta['std'])}")
    parts.append(f"kdvision {meta.get('kdvision_version', '?')}")
    return "; ".join(parts)
