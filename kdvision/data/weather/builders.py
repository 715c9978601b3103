"""Data set builders for multi-weather data on disk: "weather_mix" and "allweather".

``weather_mix`` combines several folders, each read with a registered layout (those of
``kdvision.data.weather.layouts`` and ``kdvision.data.restoration.paired_layouts``, ``pattern``
included: its ``input`` and ``target`` templates are keys of the source) and labelled with a
weather type, e.g. the paper's setting 1::

    data:
      name: weather_mix
      domains: [haze, rain, snow]
      sources:
        - {layout: reside, root: data/ITS, test_root: data/SOTS/indoor, domain: haze}
        - {layout: rain13k, root: data/Rain1400/train, test_root: data/Rain1400/test, domain: rain}
        - {layout: csd, root: data/CSD/train2500, test_root: data/CSD/test2000, domain: snow}

``allweather`` reads TransWeather's list files: either one list per weather type
(``train_lists: {snow: snow.txt, ...}``) or one combined list with a regular expression per
type matched against each path (``domain_patterns``; the first match wins). The test sets
are list files per type too (``test_lists``), relative to ``test_root``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from kdvision.config_checks import Crop, PositiveInt
from kdvision.data.restoration.paired_dataset import check_pairs, split_pairs
from kdvision.data.restoration.paired_transforms import PairedTransform
from kdvision.data.restoration.paired_layouts import get_layout
from kdvision.data.weather.layouts import allweather_pairs
from kdvision.data.weather.mixed import Sampling, WeatherPairDataset
from kdvision.errors import UserError
from kdvision.registry import DATASETS

SOURCE_KEYS = ("layout", "root", "domain", "test_root", "test_count")


def _domain_order(found: list[str], domains: Optional[list], where: str) -> list[str]:
    """The weather names in the order given by ``data.domains`` (else first appearance)."""
    seen = list(dict.fromkeys(found))
    if not domains:
        return seen
    order = [str(d) for d in domains]
    extra = [d for d in seen if d not in order]
    if extra:
        raise UserError(f"{where}: weather type '{extra[0]}' is not in data.domains ({', '.join(order)})")
    missing = [d for d in order if d not in seen]
    if missing:
        raise UserError(f"data.domains lists '{missing[0]}' but no source of {where} provides it")
    return order


def _finish(train, test, domains_opt, crop, repeat, flips, transposes, cache, where,
            sampling: str = "official_uniform") -> dict:
    """train/test: lists of (Pair, weather name) -> the datasets (crop and repeat checked by the config)."""
    domains = _domain_order([d for _, d in train], domains_opt, where)
    test_missing = [d for d in {d for _, d in test} if d not in domains]
    if test_missing:
        raise UserError(f"{where}: the test data has weather type '{test_missing[0]}' that the training data lacks")
    check_pairs([p for p, _ in train], crop)
    check_pairs([p for p, _ in test])
    index = {d: i for i, d in enumerate(domains)}
    transform = PairedTransform(crop, flips, transposes)
    train_set = WeatherPairDataset([p for p, _ in train], [index[d] for _, d in train], domains, transform,
                                   repeat, cache)
    train_set.sampling = sampling
    test_set = WeatherPairDataset([p for p, _ in test], [index[d] for _, d in test], domains, None, 1, cache)
    return {"train": train_set, "val": test_set, "test": test_set}


@DATASETS.register("weather_mix")
def weather_mix(seed: int, sources: list, domains: Optional[list] = None, crop: Crop = 224,
                repeat: PositiveInt = 1, flips: bool = True, transposes: bool = False, cache: bool = False,
                sampling: Sampling = "official_uniform") -> dict:
    """Several weather folders, each {layout, root, domain, test_root | test_count}, mixed.
    ``sampling``: the training epoch, "official_uniform" or "all" (``kdvision.data.weather.mixed``)."""
    if not sources:
        raise UserError("data.sources is empty: list the weather folders to mix")
    train, test = [], []
    for i, src in enumerate(sources):
        where = f"data.sources[{i}]"
        if not isinstance(src, dict):
            raise UserError(f"{where} must be a mapping with layout, root and domain")
        layout = get_layout(src.get("layout"), f"{where}.layout")
        options = {k: v for k, v in src.items() if k not in SOURCE_KEYS}
        domain = src.get("domain", layout.domain)
        if not domain:
            raise UserError(f"{where}.domain is missing (the weather type of the '{layout.name}' folder)")
        if "root" not in src:
            raise UserError(f"{where}.root is missing")
        pairs = layout.pairs(src["root"], options, where, SOURCE_KEYS)
        if src.get("test_root"):
            held = layout.pairs(src["test_root"], options, where, SOURCE_KEYS)
        else:
            pairs, held = split_pairs(pairs, None, int(src.get("test_count", 0)), str(src["root"]))
        train += [(p, str(domain)) for p in pairs]
        test += [(p, str(domain)) for p in held]
    return _finish(train, test, domains, crop, repeat, flips, transposes, cache, "data.sources", sampling)


def _labelled(root: str, lists: dict | None, combined: str, patterns: dict | None, key: str) -> list:
    if lists:
        out = []
        for domain, list_file in lists.items():
            out += [(p, str(domain)) for p in allweather_pairs(root, list_file)]
        return out
    if not combined:
        return []
    if not patterns:
        raise UserError(f"data.{key}: a combined list needs data.domain_patterns ({{weather: regex}}) to tell "
                        f"the weather type of each image, or give data.{key}s (one list per type)")
    compiled = []
    for domain, pattern in patterns.items():
        try:
            compiled.append((str(domain), re.compile(str(pattern))))
        except re.error as e:
            raise UserError(f"data.domain_patterns.{domain}: bad regular expression: {e}") from None
    out = []
    for p in allweather_pairs(root, combined):
        rel = str(p.input)
        domain = next((d for d, rx in compiled if rx.search(rel)), None)
        if domain is None:
            raise UserError(f"{p.input}: matches none of data.domain_patterns ({', '.join(d for d, _ in compiled)})")
        out.append((p, domain))
    return out


@DATASETS.register("allweather")
def allweather(seed: int, root: str, train_list: str = "", train_lists: Optional[dict] = None,
               domain_patterns: Optional[dict] = None, test_root: str = "", test_lists: Optional[dict] = None,
               domains: Optional[list] = None, crop: Crop = 224, repeat: PositiveInt = 1, flips: bool = True,
               transposes: bool = False, cache: bool = False, sampling: Sampling = "official_uniform") -> dict:
    """Allweather (TransWeather): list files of input paths; ground truth = "input" -> "gt".
    ``sampling``: the training epoch, "official_uniform" or "all" (``kdvision.data.weather.mixed``)."""
    if not train_list and not train_lists:
        raise UserError("data.train_list (with data.domain_patterns) or data.train_lists is required")
    train = _labelled(root, train_lists, train_list, domain_patterns, "train_list")
    test = _labelled(test_root or root, test_lists, "", None, "test_list")
    if not test:
        raise UserError("data.test_lists is required: {weather: list file} of the test sets, relative to "
                        "data.test_root (e.g. {snow: snowtest100k_L.txt})")
    return _finish(train, test, domains, crop, repeat, flips, transposes, cache, f"allweather {Path(root)}",
                   sampling)
