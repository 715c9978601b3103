import pytest

from kdvision.config import apply_overrides, load_config
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, write_yaml


def test_overrides_change_nested_values(tiny_config):
    cfg = load_config(tiny_config, ["train.epochs=7", "train.optimizer.lr=0.2", "train.schedule.milestones=[3,5]",
                                    "method.name=kd"])
    assert cfg.train.epochs == 7
    assert cfg.train.optimizer.lr == 0.2
    assert cfg.train.schedule.milestones == [3, 5]
    assert cfg.method["name"] == "kd"


def test_unknown_key_names_the_key_and_file(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "train": {"epochz": 3}})
    with pytest.raises(UserError, match=r"c.yaml: unknown key 'train.epochz'"):
        load_config(path)


def test_wrong_type_names_the_key(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "train": {"epochs": "many"}})
    with pytest.raises(UserError, match=r"'train.epochs' must be an integer"):
        load_config(path)


def test_int_is_accepted_where_float_expected(tiny_config):
    assert load_config(tiny_config, ["train.optimizer.lr=1"]).train.optimizer.lr == 1.0


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: [1, 2\n")
    with pytest.raises(UserError, match=r"bad.yaml:\d+:\d+: malformed YAML"):
        load_config(path)


def test_base_is_merged_and_a_renamed_section_replaced(tmp_path):
    write_yaml(tmp_path / "base.yaml", {**TINY_DIGITS, "method": {"name": "kd", "temperature": 2.0}})
    child = write_yaml(tmp_path / "child.yaml", {"base": "base.yaml", "method": {"name": "at", "weights": {"at": 10.0}},
                                                  "train": {"epochs": 5}})
    cfg = load_config(child)
    assert cfg.method == {"name": "at", "weights": {"at": 10.0}}  # kd's temperature must not leak into at
    assert cfg.train.epochs == 5 and cfg.train.optimizer.lr == 0.05  # merged, not replaced


def test_override_into_non_mapping_is_an_error():
    with pytest.raises(UserError, match="not a mapping"):
        apply_overrides({"train": 3}, ["train.epochs=2"])


def test_stages_set_total_epochs(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", {**TINY_DIGITS, "train": {"stages": [
        {"name": "a", "epochs": 2}, {"name": "b", "epochs": 3, "method": {"weights": {"ce": 0.5}}}]}})
    cfg = load_config(path)
    assert cfg.train.epochs == 5 and cfg.train.stages[1].method == {"weights": {"ce": 0.5}}
