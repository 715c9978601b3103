"""data.device_resident: whole-batch augmentation on the device, equal to the DataLoader path."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kdvision.cache.attach import build_cache, expected_header
from kdvision.cache.views import CachedViews, RecordingViews, ReplayAugment
from kdvision.config import config_from_dict
from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.classification.transforms import RandomCropFlip
from kdvision.data.device_batches import DeviceBatches, use_device_resident
from kdvision.engine import build
from kdvision.engine.checkpoint import load_checkpoint
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.models import MODELS
from tests.conftest import TINY_DIGITS

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cifar_shaped(n=64, seed=0):
    """A CIFAR-shaped set: random uint8 32x32x3 images, crop 32 pad 4 + flip, CIFAR-100 statistics."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    return ImageArrayDataset(images, rng.integers(0, 100, size=n), 100, (0.5071, 0.4867, 0.4408),
                             (0.2675, 0.2565, 0.2761), augment=RandomCropFlip(32, padding=4))


def per_sample(dataset, i, params):
    """Item i through the dataset's own __getitem__ with the given augmentation parameters."""
    replay = ReplayAugment(dataset.augment)
    replay.params = tuple(params)
    clone = ImageArrayDataset.__new__(ImageArrayDataset)
    clone.__dict__.update({k: v for k, v in dataset.__dict__.items() if not k.startswith("_device")})
    clone.augment = replay
    return clone[i]


def test_same_parameters_give_exactly_the_per_sample_tensor():
    data = cifar_shaped()
    batches = DeviceBatches(data, 16, CPU, torch.Generator().manual_seed(0))
    index = torch.tensor([3, 0, 63, 17, 17])
    params = torch.tensor([[0, 0, 1], [8, 8, 0], [4, 4, 0], [1, 7, 1], [7, 1, 0]])
    batch = batches.batch(index, params)
    for j, i in enumerate(index.tolist()):
        item = per_sample(data, i, (int(params[j, 0]), int(params[j, 1]), bool(params[j, 2])))
        assert torch.equal(batch["input"][j], item["input"])
        assert batch["target"][j] == item["target"]
    assert batch["index"].tolist() == index.tolist()
    assert batch["input"].is_contiguous()  # the DataLoader's memory format (channels_last is train.channels_last's)


def test_no_augmentation_is_the_normalised_image():
    data = cifar_shaped()
    data.augment = None
    batch = DeviceBatches(data, 8, CPU, torch.Generator().manual_seed(0)).batch(torch.tensor([5, 2]))
    assert torch.equal(batch["input"][1], data[2]["input"])


def test_order_and_batch_count_are_the_dataloaders():
    data = cifar_shaped(n=50)
    loader = DataLoader(data, batch_size=16, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(7))
    batches = DeviceBatches(data, 16, CPU, torch.Generator().manual_seed(7))
    assert len(batches) == len(loader) == 3
    assert [b["index"].tolist() for b in batches] == [b["index"].tolist() for b in loader]


def frequencies(values: torch.Tensor, size: int) -> np.ndarray:
    return np.bincount(values.numpy().astype(int), minlength=size) / len(values)


def test_crop_offsets_and_flips_have_the_per_sample_distribution():
    data = cifar_shaped(n=64)
    torch.manual_seed(0)
    recorder = RecordingViews(data)
    live = torch.stack([recorder[i % 64]["view_params"] for i in range(3000)])
    batches = DeviceBatches(data, 64, CPU, torch.Generator().manual_seed(0), record=True)
    device = torch.cat([b["view_params"] for _ in range(47) for b in batches])[:3000]
    for col, size in ((0, 9), (1, 9), (2, 2)):  # top, left in 0..8 (pad 4), flipped
        a, b = frequencies(live[:, col], size), frequencies(device[:, col], size)
        assert (a > 0).all() and (b > 0).all() and len(a) == len(b) == size
        np.testing.assert_allclose(a, b, atol=0.04)  # ~5 standard errors of a difference of frequencies
    assert abs(device[:, 2].mean().item() - 0.5) < 0.04


def test_a_batch_draws_fresh_views_each_time_from_the_seeded_global_rng():
    data = cifar_shaped()
    batches = DeviceBatches(data, 64, CPU, torch.Generator().manual_seed(0), record=True)
    torch.manual_seed(3)
    a = next(iter(batches))
    torch.manual_seed(3)
    b = next(iter(DeviceBatches(data, 64, CPU, torch.Generator().manual_seed(0), record=True)))
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["view_params"], b["view_params"])
    c = next(iter(batches))
    assert not torch.equal(a["view_params"], c["view_params"])


def tiny_kd(tmp_path, topk=None):
    cfg = config_from_dict({**TINY_DIGITS, "data": {**TINY_DIGITS["data"], "train_size": 40}, "method": {"name": "kd"},
                            "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")},
                            "teacher_cache": {"views": 3, "dtype": "fp32", "topk": topk}}, "test.yaml")
    task = build.build_task(cfg)
    torch.manual_seed(0)
    teacher = MODELS.get("resnet8")(num_classes=10).eval()
    return cfg, task.datasets()["train"], build.build_method(cfg, task, [teacher])


@pytest.mark.parametrize("topk", [None, 3])
def test_the_teacher_cache_replays_through_device_batches(tmp_path, topk):
    cfg, train, method = tiny_kd(tmp_path, topk)
    cache = build_cache(method.teacher, train, expected_header(cfg, method.teacher, train), cfg, CPU)
    views = CachedViews(train, cache)
    batch = next(iter(DeviceBatches(views, 40, CPU, torch.Generator().manual_seed(1), record=True)))
    used = set()
    for j, i in enumerate(batch["index"].tolist()):
        matches = [v for v in range(3) if torch.equal(cache.params[i, v].double(), batch["view_params"][j])]
        assert matches, f"sample {i} got parameters that are none of its recorded views"
        item = views.view(i, matches[0])
        assert torch.equal(batch["input"][j], item["input"])
        torch.testing.assert_close(batch["teacher_logits"][j], item["teacher_logits"])
        used.update(matches)
    assert len(used) > 1  # views are drawn, not always the first


def test_device_resident_settings_are_checked():
    cfg = config_from_dict({**TINY_DIGITS, "data": {**TINY_DIGITS["data"], "device_resident": "yes"}}, "x.yaml")
    with pytest.raises(UserError, match="x.yaml: data.device_resident must be true, false or auto, got 'yes'"):
        use_device_resident(cfg, cifar_shaped(), CPU)
    cfg.data["device_resident"] = True
    with pytest.raises(UserError, match="not an in-memory image set"):
        use_device_resident(cfg, [1, 2, 3], CPU)
    assert use_device_resident(cfg, cifar_shaped(), CPU) is True
    cfg.data["device_resident"] = "auto"
    assert use_device_resident(cfg, cifar_shaped(), CPU) is False  # auto: only on CUDA
    assert use_device_resident(cfg, cifar_shaped(), torch.device("cuda")) is True
    assert use_device_resident(cfg, cifar_shaped(), torch.device("cuda"), world_size=2) is False


def test_resume_with_device_resident_data_and_the_cache_equals_an_uninterrupted_run(tmp_path):
    torch.save(MODELS.get("resnet8")(num_classes=10).state_dict(), tmp_path / "t.pt")
    data = {**TINY_DIGITS, "data": {**TINY_DIGITS["data"], "train_size": 64, "device_resident": True},
            "method": {"name": "kd"}, "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")},
            "teacher_cache": {"views": 2, "path": str(tmp_path / "cache.safetensors")}}
    make = lambda out, resume=False: Trainer(config_from_dict(data, "kd.yaml"), out, resume=resume, quiet=True)
    make(tmp_path / "full").fit()
    interrupted = make(tmp_path / "part")
    real_epoch = interrupted._train_epoch

    def killed_in_epoch_2(epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(epoch)

    interrupted._train_epoch = killed_in_epoch_2
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = make(tmp_path / "part", resume=True)
    resumed.fit()
    assert isinstance(resumed._loader(resumed.datasets["train"], True, 0), DeviceBatches)
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_the_bench_cifar_files_are_the_official_layout_and_go_device_resident(tmp_path):
    from kdvision.benchmarks_lib.data_path import write_cifar100
    from kdvision.registry import DATASETS

    write_cifar100(tmp_path, train_images=12, test_images=5)
    data = DATASETS.get("cifar100")(root=str(tmp_path))
    assert len(data["train"]) == 12 and len(data["test"]) == 5 and data["train"][0]["input"].shape == (3, 32, 32)
    batch = next(iter(DeviceBatches(data["train"], 4, CPU, torch.Generator().manual_seed(0))))
    assert batch["input"].shape == (4, 3, 32, 32) and batch["target"].max() < 100


def test_kill_inside_an_epoch_with_device_resident_data_then_resume_gives_the_same_weights(tmp_path):
    """As tests/test_run_dirs.py's mid-epoch kill, with the training batches built on the device."""
    from safetensors.torch import load_file

    from tests.conftest import run_cli, write_yaml
    from tests.test_run_dirs import run_env

    cfg = str(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {**TINY_DIGITS["data"], "device_resident": True}}))
    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli("train", cfg, "--out", str(full), "--quiet").returncode == 0
    killed = run_env("train", cfg, "--out", str(part), "--quiet", "train.checkpoint_every_steps=3",
                     env_extra={"KDVISION_TEST_DIE_AFTER_STEP": "4"})
    assert killed.returncode == -9, killed.stderr
    resumed = run_cli("train", cfg, "--out", str(part), "--resume", "train.checkpoint_every_steps=3")
    assert resumed.returncode == 0 and "step 3 of epoch 1" in resumed.stderr, resumed.stderr
    a, b = load_file(str(full / "student.safetensors")), load_file(str(part / "student.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
