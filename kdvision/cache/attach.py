"""Build or check the teacher cache and hand the trainer a training set that replays it."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from kdvision.cache.fingerprints import augment_description, augment_digest, data_digest, teacher_digest
from kdvision.cache.store import (DTYPES, FORMAT, VERSION, TeacherCache, check_settings, compress_logits,
                                  mismatches)
from kdvision.cache.views import CachedViews, RecordingViews, param_types, replayable
from kdvision.errors import UserError
from kdvision.outputs import main_output

CACHE_FILE = "teacher_cache.safetensors"


def cache_path(cfg, run_root: Path, teacher_index: int = 0) -> Path:
    """Teacher 0's cache file; teacher k > 0 of a multi-teacher method gets ``<stem>.teacher<k><suffix>``."""
    tc = cfg.teacher_cache
    path = Path(tc.path).expanduser() if tc.path else Path(run_root) / CACHE_FILE
    return path if teacher_index == 0 else path.with_name(f"{path.stem}.teacher{teacher_index}{path.suffix}")


def check_method(cfg, method_class) -> None:
    """Refuse methods that need more than one teacher's logits (before any teacher is built)."""
    name = cfg.method["name"]
    if not getattr(method_class, "uses_teacher_logits_only", False):
        raise UserError(f"{cfg.source}: teacher_cache: method '{name}' needs more of the teacher than its final "
                        f"output (features or a live forward), so it cannot use the cache; remove teacher_cache "
                        f"or choose a method that only needs the teacher's logits (e.g. kd)")
    if len(cfg.all_teachers()) != 1 and method_class.teachers_required != "many":
        raise UserError(f"{cfg.source}: teacher_cache: method '{name}' uses one teacher, the config has "
                        f"{len(cfg.all_teachers())} teachers")


def check_dataset(cfg, train) -> None:
    if not replayable(train):
        raise UserError(f"{cfg.source}: teacher_cache: the training set of data '{cfg.data['name']}' cannot replay "
                        f"its augmentation (it needs an 'augment' with params() and apply(), like RandomCropFlip)")


def check_early(cfg, method_class, train) -> None:
    """Everything that can refuse the cache before any teacher is built or trained."""
    check_method(cfg, method_class)
    check_settings(cfg.teacher_cache.views, cfg.teacher_cache.topk, cfg.teacher_cache.dtype)
    check_dataset(cfg, train)


def expected_header(cfg, teacher, train) -> dict:
    tc = cfg.teacher_cache
    views = tc.views if train.augment is not None else 1  # without augmentation every view is the same
    return {"format": FORMAT, "version": VERSION, "views": views, "topk": tc.topk, "dtype": tc.dtype,
            "teacher": teacher_digest(teacher), "data": data_digest(train),
            "augment": augment_digest(train.augment, tc.seed), "num_samples": len(train)}


def view_seed(seed: int, view: int) -> int:
    return (seed * 1_000_003 + view * 7_919 + 101) % (2 ** 31)


def image_size(train) -> tuple[int, int]:
    """Height and width of a training image before augmentation."""
    clean = copy.copy(train)
    clean.augment = None
    h, w = clean[0]["input"].shape[-2:]
    return int(h), int(w)


@torch.no_grad()
def build_cache(teacher, train, expected: dict, cfg, device: torch.device, log=lambda s: None) -> TeacherCache:
    """Run the teacher (eval mode, fp32) on ``views`` recorded augmentations of every sample."""
    from kdvision.engine.runtime import worker_init

    tc = cfg.teacher_cache
    views, n = expected["views"], len(train)
    with torch.random.fork_rng(devices=[]):
        types = param_types(tuple(train.augment.params(*image_size(train)))) if train.augment is not None else []
    recorder = RecordingViews(train)
    tensors: dict[str, torch.Tensor] = {}
    params = torch.zeros(n, views, len(types), dtype=torch.float64 if "float" in types else torch.int64)
    classes = None
    started = time.perf_counter()
    was_training = teacher.training
    teacher.eval()
    for v in range(views):
        seed = view_seed(tc.seed, v)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            loader = DataLoader(recorder, batch_size=tc.batch_size, shuffle=False,
                                num_workers=int(cfg.data.get("workers", 0)), worker_init_fn=worker_init,
                                generator=torch.Generator().manual_seed(seed))
            pos = 0
            for batch in loader:
                logits = main_output(teacher(batch["input"].to(device))).float()
                classes = logits.shape[1]
                b = logits.shape[0]
                for key, value in compress_logits(logits, tc.topk, DTYPES[tc.dtype]).items():
                    if key not in tensors:
                        tensors[key] = torch.zeros(n, views, *value.shape[1:], dtype=value.dtype)
                    tensors[key][pos:pos + b, v] = value.cpu()
                params[pos:pos + b, v] = batch["view_params"].to(params.dtype)
                pos += b
        log(f"teacher cache: view {v + 1}/{views} of {n} samples recorded ({time.perf_counter() - started:.1f}s)")
    teacher.train(was_training)
    tensors["params"] = params
    header = {**expected, "param_types": types, "num_classes": classes,
              "augment_settings": augment_description(train.augment),
              "built_s": round(time.perf_counter() - started, 2), "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
              "config": cfg.source}
    return TeacherCache(header, tensors)


def _distributed() -> tuple[bool, bool]:
    """(running under torch.distributed with several ranks, this is rank 0)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return True, dist.get_rank() == 0
    return False, True


def attach_teacher_cache(cfg, method, datasets: dict, run_root: Path, device: torch.device,
                         log=lambda s: None) -> dict:
    """The datasets with "train" replaced by its cached views; builds the cache if it is missing.

    A cache whose header does not match (teacher weights, data, augmentation, views, topk,
    dtype) is refused with a UserError naming what differs, or rebuilt when
    ``teacher_cache.rebuild`` is true. Under DDP rank 0 checks and builds; the others wait.
    A multi-teacher method gets one cache per teacher, recorded on the same views, and items whose
    ``teacher_logits`` stack the teachers ([K, C]).
    """
    train = datasets["train"]
    check_early(cfg, type(method), train)
    distributed, main = _distributed()
    paths = [cache_path(cfg, run_root, k) for k in range(len(method.teachers))]
    expected = [expected_header(cfg, teacher, train) for teacher in method.teachers]
    if main:
        for k, (path, exp) in enumerate(zip(paths, expected)):
            _check_or_build(cfg, method.teachers[k], train, path, exp, device, log)
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    caches = []
    for path, exp in zip(paths, expected):
        cache = TeacherCache.load(path)
        reasons = mismatches(cache.header, exp)
        if reasons:  # another rank's view of the file, or a file replaced meanwhile
            raise UserError(f"teacher_cache.path: {path} does not fit this run: built for {'; '.join(reasons)}")
        caches.append(cache)
    return {**datasets, "train": CachedViews(train, caches[0] if len(caches) == 1 else caches)}


def _check_or_build(cfg, teacher, train, path: Path, expected: dict, device, log) -> None:
    tc = cfg.teacher_cache
    build = not path.exists()
    if not build:
        reasons = mismatches(TeacherCache.read_header(path), expected)
        if reasons and not tc.rebuild:
            raise UserError(f"teacher_cache.path: {path} does not fit this run: built for {'; '.join(reasons)}. "
                            f"Delete it, choose another teacher_cache.path, or set teacher_cache.rebuild=true")
        if reasons:
            log(f"teacher cache {path} is stale ({'; '.join(reasons)}): rebuilding it")
        build = bool(reasons)
    if build:
        cache = build_cache(teacher, train, expected, cfg, device, log)
        cache.save(path)
        log(f"teacher cache: {expected['views']} views x {len(train)} samples -> {path} "
            f"({path.stat().st_size / 2 ** 20:.1f} MiB, {cache.header['built_s']:.1f}s)")
    else:
        log(f"teacher cache: replaying {path}")
