"""Multi-weather data: on-disk layouts on tiny trees, the mixed set, the balanced sampler,
rain/snow synthesis and the embedded weather set."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.data.weather.builders import allweather, weather_mix
from kdvision.data.restoration.paired_layouts import LAYOUTS
from kdvision.data.weather.layouts import outdoor_rain_pairs, rain100_pairs, rain1400_pairs, raindrop_pairs
from kdvision.data.weather.mixed import DomainBalancedBatchSampler
from kdvision.data.weather.synthesis import add_rain, add_snow
from kdvision.errors import UserError


def png(path: Path, value: int, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


def names(pairs):
    return [(p.input.name, p.target.name) for p in pairs]


def test_folder_layouts(tmp_path):
    png(tmp_path / "csd/train2500/Snow/1.png", 10); png(tmp_path / "csd/train2500/Gt/1.png", 20)
    assert names(LAYOUTS.get("csd").pairs(tmp_path / "csd/train2500")) == [("1.png", "1.png")]
    for n in ("a", "b"):
        png(tmp_path / f"s100k/synthetic/{n}.jpg", 10); png(tmp_path / f"s100k/gt/{n}.jpg", 20)
        png(tmp_path / f"s100k/mask/{n}.jpg", 0)
    assert names(LAYOUTS.get("snow100k").pairs(tmp_path / "s100k")) == [("a.jpg", "a.jpg"), ("b.jpg", "b.jpg")]
    png(tmp_path / "r13k/input/x.png", 1); png(tmp_path / "r13k/target/x.png", 2)
    assert names(LAYOUTS.get("rain13k").pairs(tmp_path / "r13k")) == [("x.png", "x.png")]
    for i in (2, 10):
        png(tmp_path / f"r100/rain-{i:03d}.png", 1); png(tmp_path / f"r100/norain-{i:03d}.png", 2)
    assert names(rain100_pairs(tmp_path / "r100")) == [("rain-002.png", "norain-002.png"),
                                                      ("rain-010.png", "norain-010.png")]
    png(tmp_path / "orain/in/im_0001_s80_a04.png", 1); png(tmp_path / "orain/in/im_0001_s90_a06.png", 1)
    png(tmp_path / "orain/gt/im_0001.png", 2)
    assert names(outdoor_rain_pairs(tmp_path / "orain")) == [("im_0001_s80_a04.png", "im_0001.png"),
                                                            ("im_0001_s90_a06.png", "im_0001.png")]
    png(tmp_path / "drop/data/3_rain.png", 1); png(tmp_path / "drop/gt/3_clean.png", 2)
    assert names(raindrop_pairs(tmp_path / "drop")) == [("3_rain.png", "3_clean.png")]
    for k in (1, 14):
        png(tmp_path / f"r1400/rainy_image/901_{k}.jpg", 1)
    png(tmp_path / "r1400/ground_truth/901.jpg", 2)
    assert names(rain1400_pairs(tmp_path / "r1400")) == [("901_1.jpg", "901.jpg"), ("901_14.jpg", "901.jpg")]
    png(tmp_path / "r1400/rainy_image/902_3.jpg", 1)
    with pytest.raises(UserError, match="902_3.jpg: cannot be paired: no ground_truth/902_3 or 902"):
        rain1400_pairs(tmp_path / "r1400")


def test_unpairable_files_are_named(tmp_path):
    png(tmp_path / "r100/rain-001.png", 1)
    with pytest.raises(UserError, match="rain-001.png: cannot be paired: no norain-1"):
        rain100_pairs(tmp_path / "r100")
    png(tmp_path / "drop/data/4_rain.png", 1); png(tmp_path / "drop/gt/5_clean.png", 2)
    with pytest.raises(UserError, match="4_rain.png: cannot be paired"):
        raindrop_pairs(tmp_path / "drop")


def test_allweather_lists_per_type_and_by_pattern(tmp_path):
    for n in ("snow_1", "snow_2", "im_0003_s80_a04"):
        png(tmp_path / f"allweather/input/{n}.png", 5); png(tmp_path / f"allweather/gt/{n}.png", 200)
    (tmp_path / "snow.txt").write_text("./allweather/input/snow_1.png\n/allweather/input/snow_2.png\n")
    (tmp_path / "rain.txt").write_text("allweather/input/im_0003_s80_a04.png\n")
    (tmp_path / "all.txt").write_text("".join(f"./allweather/input/{n}.png\n" for n in ("snow_1", "snow_2", "im_0003_s80_a04")))
    sets = allweather(0, root=str(tmp_path), train_lists={"snow": "snow.txt", "rain": "rain.txt"},
                      test_lists={"rain": "rain.txt"}, crop=8)
    train = sets["train"]
    assert train.domains == ["snow", "rain"] and train.sample_domains == [0, 0, 1]
    item = train[2]
    assert item["input"].shape == (3, 8, 8) and int(item["domain"]) == 1
    assert torch.allclose(item["target"], torch.full((3, 8, 8), 200 / 255))
    sets = allweather(0, root=str(tmp_path), train_list="all.txt", domains=["rain", "snow"],
                      domain_patterns={"rain": r"im_\d+_s\d+", "snow": "snow"}, test_lists={"snow": "snow.txt"}, crop=0)
    assert sets["train"].domains == ["rain", "snow"] and sets["train"].sample_domains == [1, 1, 0]
    with pytest.raises(UserError, match="domain_patterns"):
        allweather(0, root=str(tmp_path), train_list="all.txt", test_lists={"snow": "snow.txt"})
    (tmp_path / "bad.txt").write_text("./allweather/input/missing.png\n")
    with pytest.raises(UserError, match=r"bad.txt:1: input image not found"):
        allweather(0, root=str(tmp_path), train_lists={"snow": "bad.txt"}, test_lists={"snow": "snow.txt"})


def test_weather_mix_labels_each_source(tmp_path):
    for i in range(3):
        png(tmp_path / f"haze/input/{i}.png", 100); png(tmp_path / f"haze/target/{i}.png", 0)
        png(tmp_path / f"csd/Snow/{i}.png", 200); png(tmp_path / f"csd/Gt/{i}.png", 0)
    png(tmp_path / "r100/rain-001.png", 50); png(tmp_path / "r100/norain-001.png", 0)
    png(tmp_path / "r100test/rain-001.png", 50); png(tmp_path / "r100test/norain-001.png", 0)
    sets = weather_mix(0, domains=["haze", "rain", "snow"], crop=8, sources=[
        {"layout": "csd", "root": str(tmp_path / "csd"), "test_count": 1},
        {"layout": "paired_folder", "root": str(tmp_path / "haze"), "domain": "haze", "test_count": 1},
        {"layout": "rain100", "root": str(tmp_path / "r100"), "test_root": str(tmp_path / "r100test")}])
    train, test = sets["train"], sets["test"]
    assert train.domains == ["haze", "rain", "snow"]
    assert train.domain_counts() == {"haze": 2, "rain": 1, "snow": 2}
    assert test.domain_counts() == {"haze": 1, "rain": 1, "snow": 1}
    for item in (train[i] for i in range(len(train))):
        value = {0: 100, 1: 50, 2: 200}[int(item["domain"])]
        assert torch.allclose(item["input"], torch.full_like(item["input"], value / 255))
    with pytest.raises(UserError, match="layout 'csv'"):
        weather_mix(0, sources=[{"layout": "csv", "root": "x", "domain": "snow"}])
    with pytest.raises(UserError, match=r"data.sources\[0\].domain is missing"):
        weather_mix(0, sources=[{"layout": "paired_folder", "root": str(tmp_path / "haze"), "test_count": 1}])


def test_sampler_puts_every_domain_in_each_batch():
    sample_domains = [0] * 50 + [1] * 7 + [2] * 3  # unbalanced on purpose
    s = DomainBalancedBatchSampler(sample_domains, 8, torch.Generator().manual_seed(0))
    batches = list(s)
    assert len(batches) == len(s) == 60 // 8
    for b in batches:
        assert len(b) == 8 and {sample_domains[i] for i in b} == {0, 1, 2}
        counts = [sum(sample_domains[i] == d for i in b) for d in range(3)]
        assert sorted(counts) == [2, 3, 3]
    again = list(DomainBalancedBatchSampler(sample_domains, 8, torch.Generator().manual_seed(0)))
    assert again == batches
    with pytest.raises(UserError, match="batch_size 2"):
        DomainBalancedBatchSampler(sample_domains, 2)


def test_rain_is_additive_and_snow_a_mask_composite():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0, 0.6, (40, 48, 3)).astype(np.float32)
    rainy, info = add_rain(clean, np.random.default_rng(1))
    rainy2, _ = add_rain(clean, np.random.default_rng(1))
    assert np.array_equal(rainy, rainy2) and info["domain"] == "rain"
    assert np.allclose(rainy, np.clip(clean + info["streaks"][..., None], 0, 1), atol=1e-6)
    assert info["streaks"].max() > 0.2 and np.all(rainy >= clean - 1e-6)
    snowy, info = add_snow(clean, np.random.default_rng(2))
    m = info["mask"][..., None]
    assert info["domain"] == "snow" and 0 < m.max() <= 1
    assert np.allclose(snowy, clean * (1 - m) + info["colour"] * m, atol=1e-6)


def test_heavy_rain_and_snow_degrade_more_than_light():
    """``severity: heavy``: every draw has more layers, and the same photos lose >= 4 dB more."""
    from kdvision.data.weather.embedded import embedded_weather
    psnr = lambda d: (10 * torch.log10(1 / ((d.inputs.float() - d.targets.float()) / 255).pow(2)  # noqa: E731
                                        .mean(dim=(1, 2, 3)))).mean().item()
    small = dict(size=48, train_per_domain=1, val_per_domain=1, test_per_domain=12, data_seed=0)
    for weather in ("rain", "snow"):
        light, heavy = (embedded_weather(0, domains=[weather], severity=s, **small)["test"] for s in ("light", "heavy"))
        assert torch.equal(light.targets, heavy.targets)  # the same clean crops
        assert psnr(heavy) < psnr(light) - 4.0, weather
    clean = np.full((48, 48, 3), 0.3, np.float32)
    for seed in range(5):
        assert len(add_rain(clean, np.random.default_rng(seed), severity="heavy")[1]["layers"]) >= 2
        assert len(add_snow(clean, np.random.default_rng(seed), severity="heavy")[1]["layers"]) >= 2
    with pytest.raises(ValueError, match="severity"):
        add_rain(clean, np.random.default_rng(0), severity="medium")


def test_every_snowy_image_has_snow_even_on_small_crops():
    # the near-flake layer alone draws ~1e-4 flakes per pixel: on 32x32 crops most draws are empty
    clean = np.full((32, 32, 3), 0.3, np.float32)
    for seed in range(40):
        snowy, info = add_snow(clean, np.random.default_rng(seed), layers=1)
        assert info["mask"].max() > 0.1, f"seed {seed}: no flake"
        assert np.abs(snowy - clean).max() > 0.05


def test_embedded_weather_is_deterministic_and_splits_photos():
    from kdvision.data.weather.embedded import embedded_weather
    small = dict(size=32, train_per_domain=3, val_per_domain=1, test_per_domain=2)
    mix = embedded_weather(0, **small)
    assert mix["train"].domains == ["haze", "rain", "snow"] and len(mix["train"]) == 9
    again = embedded_weather(0, **small)
    assert torch.equal(mix["train"].inputs, again["train"].inputs)
    haze_only = embedded_weather(0, domains=["haze"], **small)
    assert torch.equal(haze_only["test"].inputs, mix["test"].inputs[:2])  # the same haze samples
    other = embedded_weather(1, **small)
    assert not torch.equal(mix["train"].inputs, other["train"].inputs)
    photo = lambda ds: {n.split("_", 3)[3] for n in ds.names}  # noqa: E731
    assert not photo(mix["train"]) & photo(mix["test"])
    item = mix["train"][4]
    assert item["input"].dtype == torch.float32 and int(item["domain"]) == 1
    assert not torch.equal(item["input"], item["target"])
