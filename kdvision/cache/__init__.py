"""The augmentation-aware teacher-output cache (in the spirit of FKD, Shen & Xing, ECCV 2022,
"A Fast Knowledge Distillation Framework for Visual Recognition", arXiv 2112.01528).

Once, before training, the frozen teacher runs on ``views`` augmented views of every training
sample; each view's augmentation parameters (crop offsets, flip, ...) and the teacher's logits
are stored in one safetensors file. Training then draws one recorded view per sample and
epoch, replays exactly those parameters on the image and hands the stored logits to the method
as ``batch["teacher_logits"]``: no teacher forward at all.

Only methods with ``uses_teacher_logits_only = True`` can use it; the others are refused.
The file's header holds digests of the teacher weights, the training data and the
augmentation; a cache that does not match is refused (or rebuilt with ``rebuild: true``).
"""
from kdvision.cache.attach import attach_teacher_cache
from kdvision.cache.store import TeacherCache
from kdvision.cache.views import CachedViews, ReplayAugment, replayable

__all__ = ["attach_teacher_cache", "TeacherCache", "CachedViews", "ReplayAugment", "replayable"]
