"""The one log line of a run that could replay the teacher-output cache and does not.

The cache fits a method that needs only the teacher's final output
(``uses_teacher_logits_only``), one teacher, and a training set whose augmentation replays
(:func:`kdvision.cache.views.replayable`). It is not switched on silently: it trains on
``views`` recorded augmentations per image instead of a fresh one every epoch, a different
(if, on digits, equally accurate) experiment; so the run says what it would gain.
"""
from __future__ import annotations

from kdvision.cache.views import replayable

#: measured in benchmarks/results/speed.md (kdvision bench cache, digits/kd, CPU)
MEASURED_GAIN = "about 2.3-2.6x faster per epoch on CPU for digits/kd, benchmarks/results/speed.md"


def cache_applies(cfg, method_class, train) -> bool:
    return (getattr(method_class, "uses_teacher_logits_only", False) and len(cfg.all_teachers()) == 1
            and replayable(train))


def cache_hint(cfg, method_class, train) -> str | None:
    """The hint line, or None when the cache is on or does not fit this run."""
    if cfg.teacher_cache is not None or not cache_applies(cfg, method_class, train):
        return None
    views = 8 if train.augment is not None else 1
    return (f"hint: teacher_cache: {{views: {views}}} would replay the teacher's logits instead of running it "
            f"({MEASURED_GAIN}); it trains on {views} recorded augmented view(s) per image instead of a fresh "
            f"one each epoch")
