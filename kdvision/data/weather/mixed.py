"""Multi-weather training data: paired images labelled with their weather type, and a batch
sampler that puts every weather type into each batch.

Items are ``{"input", "target": CHW float in [0, 1], "domain": LongTensor scalar, "name"}``;
``dataset.domains`` lists the weather names the indices refer to (e.g. ["haze", "rain",
"snow"]) and ``dataset.sample_domains[i]`` is item i's index, which the sampler reads without
loading images. ``dataset.train_batch_sampler(batch_size, generator)`` returns the sampler.

The two-stage method (Chen et al., CVPR 2022) needs every weather type in each batch. Two
epoch samplings (``data.sampling``):

* ``official_uniform`` (default): the official code's (fingerk28/Two-stage-Knowledge-...
  utils/dataset.py DatasetForTrain with drop_last): an epoch holds min(items per weather)
  samples, i.e. min // batch_size steps; each sample's weather is drawn uniformly, then an
  item of that weather uniformly (with replacement). The official loader skips a batch that
  misses a weather type (a step lost); here it is redrawn (rare: 3 * (2/3)^32 ~ 1e-5 at batch
  32 with three types). With a single weather type the epoch is the plain shuffled one.
* ``all``: every item once per epoch (len // batch_size steps), each batch an equal share of
  every type (the remainder going to types drawn at random), cycling through each type's
  shuffled items (``DomainBalancedBatchSampler``). On setting 1's lists this epoch is about 44x
  longer than the official one, so epoch counts mean different schedules.
"""
from __future__ import annotations

from typing import Iterator, Literal, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from kdvision.data.restoration.paired_dataset import PairedImageDataset
from kdvision.data.restoration.paired_layouts import Pair
from kdvision.data.restoration.paired_transforms import PairedTransform
from kdvision.errors import UserError


def domain_groups(sample_domains: Sequence[int], batch_size: int) -> list[torch.Tensor]:
    """The item indices of each domain (sorted by domain); every batch must be able to hold all."""
    groups: dict[int, list[int]] = {}
    for i, d in enumerate(sample_domains):
        groups.setdefault(int(d), []).append(i)
    if not groups:
        raise UserError("the multi-weather data set is empty")
    if batch_size < len(groups):
        raise UserError(f"data.batch_size {batch_size} is smaller than the number of weather types "
                        f"({len(groups)}): each batch must hold every type")
    return [torch.tensor(groups[d]) for d in sorted(groups)]


class DomainBalancedBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices with every domain present (each an equal share).

    ``sample_domains[i]``: the domain index of item i. ``num_batches`` defaults to
    len(items) // batch_size (at least 1). Deterministic for a given ``generator``.
    """

    def __init__(self, sample_domains: Sequence[int], batch_size: int,
                 generator: torch.Generator | None = None, num_batches: int | None = None):
        self.groups = domain_groups(sample_domains, batch_size)
        self.batch_size = batch_size
        self.generator = generator
        self.num_batches = num_batches or max(1, len(sample_domains) // batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        g = self.generator
        k = len(self.groups)
        queues = [grp[torch.randperm(len(grp), generator=g)] for grp in self.groups]
        pos = [0] * k
        for _ in range(self.num_batches):
            counts = [self.batch_size // k] * k
            for j in torch.randperm(k, generator=g)[: self.batch_size % k].tolist():
                counts[j] += 1
            batch = []
            for j, n in enumerate(counts):
                for _ in range(n):
                    if pos[j] == len(queues[j]):
                        queues[j] = self.groups[j][torch.randperm(len(self.groups[j]), generator=g)]
                        pos[j] = 0
                    batch.append(int(queues[j][pos[j]]))
                    pos[j] += 1
            order = torch.randperm(len(batch), generator=g).tolist()
            yield [batch[i] for i in order]


class UniformDomainBatchSampler(Sampler[list[int]]):
    """The official two-stage epoch: min(items per domain) // batch_size batches; each index
    drawn by picking a domain uniformly, then one of its items uniformly (with replacement).
    A batch missing a domain is redrawn. Deterministic for a given ``generator``."""

    def __init__(self, sample_domains: Sequence[int], batch_size: int, generator: torch.Generator | None = None):
        self.groups = domain_groups(sample_domains, batch_size)
        self.batch_size = batch_size
        self.generator = generator
        self.num_batches = max(1, min(len(g) for g in self.groups) // batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        g, k = self.generator, len(self.groups)
        for _ in range(self.num_batches):
            while True:
                domains = torch.randint(k, (self.batch_size,), generator=g)
                if len(torch.unique(domains)) == k:
                    break
            yield [int(self.groups[d][torch.randint(len(self.groups[d]), (1,), generator=g)])
                   for d in domains.tolist()]


#: how a training epoch draws its samples (checked as the builders' ``sampling`` option)
Sampling = Literal["official_uniform", "all"]


class DomainDataset(Dataset):
    """Mixin: ``domains``, ``sample_domains``, ``sampling`` and the epoch's batch sampler."""

    domains: list[str]
    sample_domains: list[int]
    sampling: str = "official_uniform"

    def train_batch_sampler(self, batch_size: int, generator: torch.Generator | None = None) -> Sampler[list[int]]:
        if self.sampling == "official_uniform" and len(set(self.sample_domains)) > 1:
            return UniformDomainBatchSampler(self.sample_domains, batch_size, generator)
        return DomainBalancedBatchSampler(self.sample_domains, batch_size, generator)

    def domain_counts(self) -> dict[str, int]:
        return {name: sum(1 for d in self.sample_domains if d == i) for i, name in enumerate(self.domains)}


class WeatherPairDataset(PairedImageDataset, DomainDataset):
    """Image pairs read from disk, each with its weather index; ``repeat`` lists them that many
    times per epoch (new random crops each time). Reading and cropping are the restoration
    ``PairedImageDataset``'s; this adds the weather ("domain") of each pair."""

    def __init__(self, pairs: Sequence[Pair], pair_domains: Sequence[int], domains: Sequence[str],
                 transform: PairedTransform | None = None, repeat: int = 1, cache: bool = False):
        if len(pairs) != len(pair_domains):
            raise ValueError("one domain per pair")
        super().__init__(list(pairs), transform, repeat=repeat, cache=cache)
        self.pair_domains = [int(d) for d in pair_domains]
        self.domains = list(domains)
        self.sample_domains = self.pair_domains * repeat

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["domain"] = torch.tensor(self.pair_domains[index % len(self.pairs)])
        return item
