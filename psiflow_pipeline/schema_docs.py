"""config/README.md's key tables, generated from the config schema, so that
every key, type, unit and default is written in one place:

    python -m psiflow_pipeline.schema_docs config/README.md   # rewrite the tables
    python -m psiflow_pipeline.schema_docs --check config/README.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from psiflow_pipeline.config import schema


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


BEGIN = "<!-- BEGIN tables generated from the schema by `python -m psiflow_pipeline.schema_docs`; do not edit -->"
END = "<!-- END generated tables -->"


def _resolve(prop: dict) -> dict:
    """A property with its $ref (into $defs) merged in."""
    if "$ref" in prop:
        target = schema()["$defs"][prop["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _type(prop: dict) -> str:
    if "enum" in prop:
        return ", ".join(f"`{value}`" for value in prop["enum"])
    if "oneOf" in prop:
        return " or ".join(_type(option) for option in prop["oneOf"])
    kinds = prop.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    names = {"integer": "int", "number": "number", "boolean": "bool", "string": "string", "null": "null"}
    words = []
    for kind in kinds:
        if kind == "array":
            words.append(f"list of {_type(prop.get('items', {}))}s")
        elif kind == "object":
            words.append("mapping")
        else:
            words.append(names[kind])
    text = " or ".join(words)
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in prop:
            bounds.append(f"{sign} {prop[key]}")
    return f"{text} {', '.join(bounds)}".strip()


def _default(prop: dict) -> str:
    if "default" not in prop:
        return "required"
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _rows(properties: dict, prefix: str = "", skip=()) -> list[str]:
    rows = []
    for name, raw in properties.items():
        if name in skip:
            continue
        prop = _resolve(raw)
        if prop.get("type") == "object" and "properties" in prop:  # a nested group, e.g. pilot
            rows += _rows(prop["properties"], f"{prefix}{name}.")
            continue
        if name == "schedule":
            continue
        meaning = prop.get("description", "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {_type(prop)} | {prop.get('unit', '')} | {_default(prop)} | {meaning} |")
    return rows


def _table(properties: dict, prefix: str = "", skip=()) -> list[str]:
    header = ["| key | type | unit | default | meaning |", "| --- | --- | --- | --- | --- |"]
    return header + _rows(properties, prefix, skip)


def _scheduled(section: dict) -> list[str]:
    schedule = section["properties"].get("schedule")
    if not schedule:
        return []
    keys = [key for key in schedule["items"]["properties"] if key != "from_iteration"]
    return [
        "",
        "Can change during a study with `schedule: [{from_iteration: k, ...}]` (see above): "
        + ", ".join(f"`{key}`" for key in keys)
        + ".",
    ]


def tables() -> str:
    """The generated part of config/README.md."""
    root = schema()
    lines = ["## Top level", ""]
    lines += _table({k: v for k, v in root["properties"].items() if "properties" not in v and "items" not in v})
    for name, section in root["properties"].items():
        if name == "execution":
            continue
        if section.get("type") == "object":
            lines += ["", f"## `{name}`", "", _sentence(section.get("description", "")), ""]
            lines += _table(section["properties"]) + _scheduled(section)
        elif section.get("type") == "array" and "properties" in section.get("items", {}):
            lines += ["", f"## `{name}` (a list)", "", _sentence(section.get("description", "")), ""]
            lines += _table(section["items"]["properties"]) + _scheduled(section["items"])
    execution = root["properties"]["execution"]
    shared = {**root["$defs"]["job"], **root["$defs"]["tasks"]}
    lines += ["", "## `execution`", "", _sentence(execution["description"]), ""]
    lines += _table({k: v for k, v in execution["properties"].items() if "properties" not in v})
    for group, section in execution["properties"].items():
        if "properties" in section:
            lines += ["", f"### `execution.{group}`", "", _sentence(section["description"]), ""]
            lines += _table(section["properties"], f"{group}.", skip=shared)
    for title, keys in (("every group", root["$defs"]["job"]), ("`sample` and `label`", root["$defs"]["tasks"])):
        lines += ["", f"### Also in {title}", ""]
        lines += _table(keys, "<group>.")
    return "\n".join(lines) + "\n"


def render(readme: str) -> str:
    """`readme` with its generated region replaced by the current tables."""
    start, stop = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + tables() + readme[stop:]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the tables are out of date")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = render(text)
    if args.check:
        sys.exit(0 if new == text else 1)
    args.readme.write_text(new)


if __name__ == "__main__":
    main()
