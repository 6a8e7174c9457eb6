"""cookiecutter.json, derived from copier.yml: the same questions, in the same order, with the
same defaults and help. `make cookiecutter-json` writes it; tests/test_cookiecutter.py checks
that the committed file is what this derives.

- A question becomes a cookiecutter variable; its help, and its choices' labels, `__prompts__`.
- A choice's default comes first (cookiecutter offers the first as the default).
- A default that is a Jinja expression keeps it, names turned into `cookiecutter.<name>`;
  cookiecutter loads the same filters as copier (`_extensions`: jinja2-ansible-filters, which
  copier installs).
- A derived question (`when: false`) becomes a private `__<name>` that other defaults can use,
  unless it needs copier's own context (`_copier_conf`): copier derives those itself.
- A question asked only sometimes (`when:` an expression) is always asked by cookiecutter,
  which cannot skip one; its prompt says when it matters, and copier ignores it otherwise.

Answers are validated by copier itself, in hooks/post_gen_project.py: the same rules and the
same messages as `copier copy`.

Usage: python scripts/cookiecutter_json.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = ["jinja2_ansible_filters.AnsibleCoreFiltersExtension"]
_EXPRESSION = re.compile(r"(\{\{|\{%)(.*?)(\}\}|%\})", re.DOTALL)
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _questions(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: spec if isinstance(spec, dict) else {"default": spec}
        for name, spec in config.items()
        if not name.startswith("_")
    }


def _rename(text: str, names: dict[str, str]) -> str:
    """Inside each Jinja block, each bare name of `names` becomes its cookiecutter name."""
    word = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")(?![\w])")

    def block(match: re.Match[str]) -> str:
        opening, body, closing = match.groups()
        parts = _QUOTED.split(body)  # odd parts are quoted strings: left alone
        for index in range(0, len(parts), 2):
            parts[index] = word.sub(lambda m: names[m.group(1)], parts[index])
        return opening + "".join(parts) + closing

    return _EXPRESSION.sub(block, text)


def _when(spec: dict[str, Any]) -> str | None:
    when = spec.get("when", True)
    if when is True:
        return None
    if when is False:
        return "never"
    return _EXPRESSION.sub(lambda m: m.group(2).strip(), str(when)).strip()


def derive(copier_yml: Path = ROOT / "copier.yml") -> dict[str, Any]:
    config = yaml.safe_load(copier_yml.read_text())
    questions = _questions(config)
    names: dict[str, str] = {}
    for name, spec in questions.items():
        derived = _when(spec) == "never"
        if derived and "_copier_conf" in str(spec.get("default", "")):
            continue
        names[name] = f"cookiecutter.__{name}" if derived else f"cookiecutter.{name}"

    context: dict[str, Any] = {}
    prompts: dict[str, Any] = {}
    for name, spec in questions.items():
        if name not in names:
            continue
        kind = spec.get("type", "str")
        if kind != "str":
            raise SystemExit(f"{name}: type {kind!r}; teach scripts/cookiecutter_json.py it")
        default = _rename(str(spec.get("default", "")).strip(), names)
        if _when(spec) == "never":
            context[f"__{name}"] = default
            continue
        help_text = " ".join(str(spec.get("help", name)).split())
        condition = _when(spec)
        if condition:
            help_text += f" (only used when {condition})"
        choices = spec.get("choices")
        if choices is None:
            context[name] = default
            prompts[name] = help_text
            continue
        if isinstance(choices, list):
            labelled = {str(value): str(value) for value in choices}
        else:
            labelled = {
                str(value["value"] if isinstance(value, dict) else value): str(label)
                for label, value in choices.items()
            }
        if default not in labelled:
            raise SystemExit(f"{name}: the default {default!r} is not one of its choices")
        ordered = [default, *(value for value in labelled if value != default)]
        context[name] = ordered
        prompts[name] = {"__prompt__": help_text, **{value: labelled[value] for value in ordered}}
    context["__prompts__"] = prompts
    context["_extensions"] = EXTENSIONS
    return context


def render(context: dict[str, Any]) -> str:
    return json.dumps(context, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = ROOT / "cookiecutter.json"
    text = render(derive())
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print("cookiecutter.json is not what copier.yml gives: run make cookiecutter-json")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
