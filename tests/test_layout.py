"""The template repository's layout and the shape of its own code: everything rendered lives
under template/ (Jinja only where an answer is used; the one shared snippet in includes/, never
rendered into a project), hooks/ holds cookiecutter's hooks, tests/ holds tests, and no function
of the template's tooling is longer than harness/code_shape.py allows."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import jinja2
from jinja2 import meta

from harness.code_shape import MAX_FUNCTION_LINES, function_lengths, long_functions
from harness.project import TEMPLATE_ROOT, Project

# The template's own code: what the 60-line rule covers here (the generated project's code has
# its own test, on rendered projects).
TOOLING = ["harness", "tests", "benchmarks", "scripts", "hooks", "migrations"]
# cookiecutter's hook names (cookiecutter runs hooks/<name>.py or .sh).
COOKIECUTTER_HOOKS = {"pre_prompt", "pre_gen_project", "post_gen_project"}
# Outside template/ and includes/, still included into a rendered file until its move lands:
# hooks/setup.sh becomes template/scripts/setup.sh (issue 21, the generated package's part).
PENDING_MOVES = {"hooks/setup.sh"}
RAW = re.compile(r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}", re.DOTALL)
COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


def _sources() -> list[Path]:
    return sorted((TEMPLATE_ROOT / "template").rglob("*.jinja"))


def _referenced(path: Path) -> set[str]:
    """The templates a source includes or imports."""
    return set(meta.find_referenced_templates(jinja2.Environment().parse(path.read_text())))


def test_nothing_outside_template_is_rendered_but_the_includes(
    baked: Callable[..., Project],
) -> None:
    assert not any((TEMPLATE_ROOT / "ci_templates").rglob("*")), "sources live in template/"
    referenced = {name for path in _sources() for name in _referenced(path)}
    assert None not in referenced, "an include whose name is computed: name it"
    outside = {name for name in referenced if not name.startswith("includes/")}
    assert outside <= PENDING_MOVES, f"included from outside template/ and includes/: {outside}"
    snippets = {f"includes/{p.name}" for p in (TEMPLATE_ROOT / "includes").iterdir()}
    assert snippets and snippets <= referenced, f"unused in includes/: {snippets - referenced}"
    # Copier resolves an import from the template's root: includes/ itself is never rendered.
    project = baked()
    assert not (project.path / "includes").exists()
    assert not [p for p in project.path.rglob("*") if p.name in {"_remote.jinja", "_remote"}]


def test_a_jinja_suffix_means_an_answer_is_used() -> None:
    """A file that uses no answer is copied as it is, without the .jinja suffix."""
    plain = []
    for path in _sources():
        text = COMMENT.sub("", RAW.sub("", path.read_text()))
        if "{{" not in text and "{%" not in text:
            plain.append(str(path.relative_to(TEMPLATE_ROOT)))
    assert not plain, f"no Jinja outside raw blocks and comments: drop .jinja from {plain}"


def test_workflow_sources_are_the_rendered_files() -> None:
    """Each generated workflow's source is template/.github/workflows/<name>.yml(.jinja)."""
    workflows = TEMPLATE_ROOT / "template" / ".github" / "workflows"
    # A workflow of one answer only has its condition in its name ({% if ... %}name{% endif %}).
    names = {re.sub(r"\{%.*?%\}", "", p.name).removesuffix(".jinja") for p in workflows.iterdir()}
    always = {"ci.yml", "cd.yml", "monitor.yml", "retrain.yml", "template-sync.yml"}
    assert names == always | {"promote.yml", "batch.yml"}  # the last two: deployment kubernetes
    for path in workflows.glob("*.jinja"):
        text = path.read_text()
        assert "{% include" not in text, f"{path.name}: the source itself, not a stub"


def test_hooks_holds_cookiecutters_hooks_only() -> None:
    found = {p.relative_to(TEMPLATE_ROOT).as_posix() for p in (TEMPLATE_ROOT / "hooks").iterdir()}
    hooks = {name for name in found if Path(name).stem in COOKIECUTTER_HOOKS}
    assert found - hooks <= PENDING_MOVES, f"not cookiecutter hooks: {found - hooks}"


def test_tests_holds_tests_only() -> None:
    """Helpers live in harness/; a test module imports no other test module."""
    helpers, imports = [], []
    for path in sorted((TEMPLATE_ROOT / "tests").rglob("*.py")):
        name = path.relative_to(TEMPLATE_ROOT).as_posix()
        if not (path.name.startswith("test_") or path.name in {"conftest.py", "__init__.py"}):
            helpers.append(name)
        if re.search(r"^\s*(from|import) tests\b", path.read_text(), re.MULTILINE):
            imports.append(name)
    assert not helpers, f"not tests: move them to harness/: {helpers}"
    assert not imports, f"test modules importing test modules: {imports}"


def test_no_function_of_the_template_tooling_is_over_the_limit() -> None:
    paths = [path for folder in TOOLING for path in (TEMPLATE_ROOT / folder).rglob("*.py")]
    assert len(paths) > 40, "the folders are where this test thinks"
    found = long_functions(paths, root=TEMPLATE_ROOT)
    assert not found, f"over {MAX_FUNCTION_LINES} lines: split into named steps:\n" + "\n".join(
        map(str, found)
    )


def _function(name: str, lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x = {n}\n" for n in range(lines - 1))
    return f"{indent}def {name}():\n{body}"


def test_the_length_check_finds_long_functions_wherever_they_are(tmp_path: Path) -> None:
    """The check can fail: top-level, method, nested and async functions are each counted (a
    function holding a long one is long too)."""
    limit = MAX_FUNCTION_LINES
    source = (
        _function("short", limit)
        + _function("long", limit + 1)
        + "class Runner:\n"
        + textwrap.indent("@staticmethod\n" + _function("method", limit + 2), "    ")
        + _function("outer", 3)
        + textwrap.indent(_function("inner", limit + 1), "    ")
        + "async "
        + _function("waits", limit + 1)
    )
    lengths = {f.name: f.lines for f in function_lengths(source, Path("m.py"))}
    assert lengths["short"] == limit and lengths["long"] == limit + 1
    path = tmp_path / "m.py"
    path.write_text(source)
    found = long_functions([path], limit, root=tmp_path)
    assert [(f.name, f.lines) for f in found] == [
        ("outer", limit + 4),
        ("Runner.method", limit + 2),
        ("long", limit + 1),
        ("outer.inner", limit + 1),
        ("waits", limit + 1),
    ], found
    assert str(found[1]) == f"m.py:{2 * limit + 4} Runner.method ({limit + 2} lines)"
