"""Multi-weather restoration data (haze, rain, snow, ...): on-disk layouts, rain and snow
synthesis, the mixed data set with its weather labels, the balanced batch sampler and the
embedded weather set.

Every item is ``{"input", "target": CHW float in [0, 1], "domain": LongTensor index into
dataset.domains, "name": str}``. Importing this package registers the data sets
"weather_mix", "allweather" and "embedded_weather".
"""
from kdvision.data.weather.mixed import DomainBalancedBatchSampler, UniformDomainBatchSampler, WeatherPairDataset
from kdvision.data.weather.synthesis import add_rain, add_snow

__all__ = ["DomainBalancedBatchSampler", "UniformDomainBatchSampler", "WeatherPairDataset", "add_rain", "add_snow"]
