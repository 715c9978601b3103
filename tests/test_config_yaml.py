"""Reading config files strictly (kdvision/config_yaml.py): each class once through the CLI."""
import re

import pytest
import yaml

from kdvision.config import load_config, load_yaml
from kdvision.config_yaml import parse_yaml
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def test_base_pointing_at_itself_names_the_chain(tmp_path):
    path = write_yaml(tmp_path / "self.yaml", {**TINY_DIGITS, "base": "self.yaml"})
    line = one_line_error(run_cli("train", str(path), "--out", str(tmp_path / "r")), "'base' makes a cycle")
    assert line.count("self.yaml") >= 3, line  # the file, then the chain self.yaml -> self.yaml


def test_base_cycle_through_several_files_names_each(tmp_path):
    write_yaml(tmp_path / "a.yaml", {"base": "b.yaml", **TINY_DIGITS})
    write_yaml(tmp_path / "b.yaml", {"base": ["c.yaml"]})
    write_yaml(tmp_path / "c.yaml", {"base": "a.yaml"})
    with pytest.raises(UserError) as e:
        load_yaml(tmp_path / "a.yaml")
    chain = str(e.value).split("makes a cycle: ")[1].split(" -> ")
    assert [p.rsplit("/", 1)[-1] for p in chain] == ["a.yaml", "b.yaml", "c.yaml", "a.yaml"]


def test_a_diamond_of_bases_is_not_a_cycle(tmp_path):
    write_yaml(tmp_path / "root.yaml", TINY_DIGITS)
    write_yaml(tmp_path / "left.yaml", {"base": "root.yaml", "train": {"eval_every": 2}})
    write_yaml(tmp_path / "right.yaml", {"base": "root.yaml", "train": {"epochs": 3}})
    top = write_yaml(tmp_path / "top.yaml", {"base": ["left.yaml", "right.yaml"]})
    cfg = load_config(top)
    assert cfg.train.eval_every == 2 and cfg.train.epochs == 3


@pytest.mark.parametrize("base, shown", [(5, "an integer 5"), ([1, "x.yaml"], "a list [1, 'x.yaml']"),
                                         ({"file": "x"}, "dict {'file': 'x'}"), (None, "NoneType None")])
def test_base_of_the_wrong_type(tmp_path, base, shown):
    path = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "base": base})
    expected = f"c.yaml: 'base' must be a file name or a list of file names, got {shown}"
    with pytest.raises(UserError, match=re.escape(expected)):
        load_yaml(path)


def test_base_of_the_wrong_type_through_the_cli(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "base": 5})
    one_line_error(run_cli("train", str(path), "--out", str(tmp_path / "r")), "c.yaml", "'base' must be a file name")


def test_missing_base_names_the_file_that_asks_for_it(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "base": "gone.yaml"})
    with pytest.raises(UserError, match=r"c.yaml: base file not found: .*gone.yaml"):
        load_yaml(path)


def test_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(TINY_DIGITS).encode() + "# réglages\n".encode("latin-1"))
    one_line_error(run_cli("train", str(path), "--out", str(tmp_path / "r")), "latin1.yaml: not UTF-8 text",
                   "byte 0xe9")


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(TINY_DIGITS).encode())
    assert load_config(path).student["name"] == "resnet8"


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(TINY_DIGITS, sort_keys=False) + "seed: 3\n")
    line = one_line_error(run_cli("train", str(path), "--out", str(tmp_path / "r")),
                          "dup.yaml:", "duplicate key 'seed' (first at line 2)")
    last = len(path.read_text().splitlines())
    assert f"dup.yaml:{last}:" in line, line


def test_duplicate_keys_are_refused_at_every_depth():
    with pytest.raises(UserError, match=r"x.yaml:3:3: malformed YAML: duplicate key 'lr' \(first at line 2\)"):
        parse_yaml("train:\n  lr: 1\n  lr: 2\n", "x.yaml")
    with pytest.raises(UserError, match="duplicate key 'a'"):
        parse_yaml("m: {a: 1, b: 2, a: 3}\n", "x.yaml")
    assert parse_yaml("a: {x: 1}\nb: {x: 1}\nbase: &b {k: 1}\nc: {<<: *b, k: 2}\n", "x.yaml")["c"] == {"k": 2}


def test_list_shaped_config_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([TINY_DIGITS]))
    one_line_error(run_cli("train", str(path), "--out", str(tmp_path / "r")),
                   "list.yaml: the top level must be a mapping of keys, not a list")


@pytest.mark.parametrize("text", ["5\n", "just words\n", "[]\n"])
def test_scalar_shaped_config_is_refused(tmp_path, text):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(UserError, match="s.yaml: the top level must be a mapping of keys"):
        load_yaml(tmp_path / "s.yaml")


@pytest.mark.parametrize("text, fragment", [
    ("- a\n- b\n", "the top level must be a mapping of keys, not a list"),
    ("seed: 0\nseed: 1\n", "malformed YAML: duplicate key 'seed' (first at line 1)"),
    ("seed: caf\xe9\n", "not UTF-8 text"),
])
def test_a_damaged_run_config_is_read_as_strictly_as_any_config(tmp_path, text, fragment):
    """--resume reads the run's config.yaml through the same reader (engine/resume_check.py)."""
    from kdvision.engine.resume_check import read_run_config

    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError) as e:
        read_run_config(path)
    assert str(e.value).startswith(f"--resume: the run's {path}") and fragment in str(e.value), str(e.value)
    assert str(e.value).endswith("nothing was changed")
