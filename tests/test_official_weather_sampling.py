"""The two-stage (TKL) training epoch against the official loader
(tests/fixtures/official/tkl_epoch_sampling.json: fingerk28/Two-stage-... utils/dataset.py)."""
from __future__ import annotations

import inspect

import pytest
import torch

from kdvision.config import call_with_config, load_config
from kdvision.data.weather.builders import allweather, weather_mix
from kdvision.data.weather.embedded import embedded_weather
from kdvision.data.weather.mixed import DomainBalancedBatchSampler, DomainDataset, UniformDomainBatchSampler
from kdvision.errors import UserError
from official_fixtures import load_fixture


def domains_of_sizes(sizes):
    return [d for d, n in enumerate(sizes) for _ in range(n)]


def test_official_epoch_length_is_the_smallest_weather_set():
    fx = load_fixture("tkl_epoch_sampling")
    sample_domains = domains_of_sizes(fx["sizes"])  # 10, 100, 1000 items
    for batch_size in (3, 4, 5):
        sampler = UniformDomainBatchSampler(sample_domains, batch_size, torch.Generator().manual_seed(0))
        assert len(sampler) == len(list(sampler)) == fx["epoch_samples"] // batch_size  # DataLoader drop_last
    assert len(DomainBalancedBatchSampler(sample_domains, 3)) == sum(fx["sizes"]) // 3  # sampling: all


def test_official_sampling_draws_the_weather_uniformly_not_by_size():
    fx = load_fixture("tkl_epoch_sampling")
    sizes = [4 * n for n in fx["sizes"]]
    sample_domains = torch.tensor(domains_of_sizes(sizes))
    sampler = UniformDomainBatchSampler(sample_domains.tolist(), 4, torch.Generator().manual_seed(0))
    drawn = [i for _ in range(75) for batch in sampler for i in batch]  # 75 epochs x 10 batches x 4
    assert len(drawn) == 3000
    freq = torch.bincount(sample_domains[drawn], minlength=3).double() / len(drawn)
    official = torch.tensor(fx["weather_frequencies"], dtype=torch.double)
    assert torch.allclose(freq, official, atol=0.04)
    assert torch.allclose(freq, torch.full((3,), 1 / 3, dtype=torch.double), atol=0.04)
    # within a weather, items come from all of it (uniform with replacement), not only the first ones
    big = [i for i in drawn if sample_domains[i] == 2]
    assert max(big) - min(big) > 0.9 * sizes[2]


def test_every_official_batch_holds_every_weather():
    sampler = UniformDomainBatchSampler(domains_of_sizes([6, 6, 6]), 3, torch.Generator().manual_seed(1))
    d = domains_of_sizes([6, 6, 6])
    for _ in range(20):
        for batch in sampler:
            assert sorted(d[i] for i in batch) == [0, 1, 2]


def test_weather_data_default_to_the_official_epoch_and_offer_all():
    for builder in (embedded_weather, weather_mix, allweather):
        assert inspect.signature(builder).parameters["sampling"].default == "official_uniform"
    kw = dict(seed=0, size=16, train_per_domain=6, val_per_domain=1, test_per_domain=1)
    with pytest.raises(UserError, match=r"'data.sampling' must be one of official_uniform, all \(got 'balanced'\)"):
        call_with_config(embedded_weather, {**kw, "sampling": "balanced"}, "data", "w.yaml")
    train = DomainDataset()  # the mixin every weather data set uses (embedded, weather_mix, allweather)
    train.domains, train.sample_domains = ["haze", "rain", "snow"], domains_of_sizes([6, 6, 6])
    official = train.train_batch_sampler(3, torch.Generator().manual_seed(0))
    assert isinstance(official, UniformDomainBatchSampler) and len(official) == 6 // 3
    train.sampling = "all"
    every = train.train_batch_sampler(3, torch.Generator().manual_seed(0))
    assert isinstance(every, DomainBalancedBatchSampler) and len(every) == 18 // 3


@pytest.mark.parametrize("recipe", ["weather_setting1/tkl", "allweather/tkl"])
def test_tkl_recipes_train_on_the_official_epoch(recipe):
    assert load_config(recipe).data["sampling"] == "official_uniform"


def test_embedded_benchmark_recipe_keeps_every_sample_per_epoch():
    assert load_config("embedded_weather/tkl").data["sampling"] == "all"
