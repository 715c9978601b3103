"""Reading one YAML config file strictly: UTF-8, no duplicate keys, a mapping at the top.

``yaml.safe_load`` lets the last of two equal keys win silently and reads any encoding
Python guesses; a config is the record of a run, so both are refused here, naming the file
(and the line).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from kdvision.errors import UserError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor': its keys may be overridden here
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader's own error says so
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {first + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, where: str):
    """Parse ``text`` with :class:`UniqueKeyLoader`; a problem is one line naming ``where`` and the line."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{where}{at}: malformed YAML: {problem}") from None


def read_yaml_mapping(path: Path) -> dict:
    """The top-level mapping of a YAML file (``{}`` for an empty one)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                        f"save the config as UTF-8") from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of keys, not {_kind(data)}")
    return data


def base_paths(value, path: Path) -> list[str]:
    """The ``base:`` entry of ``path``: a file name or a list of file names."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UserError(f"{path}: 'base' must be a file name or a list of file names, got {_kind(value)} {value!r}"[:200])


def _kind(value) -> str:
    return {list: "a list", str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__)
