"""Fast checks of what a new user meets first (issue 12); tests/e2e/test_first_hour.py runs it all.

AGENTS.md names only commands that exist; copier says what to do next; accented names are
welcome; the READMEs send no one to a URL the service does not serve, and need no uv on PATH;
`make serve` on a taken port and `make predict` against another service say so in one line;
a failed `make pipeline` leaves the .dvc files as they were; `dvc plots show` draws each plot
once; CI sets up a project pushed before `make setup`.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from harness.gha import load_workflow
from harness.project import TEMPLATE_ROOT, Project, free_port, tool_env
from harness.readme import (
    Command,
    Service,
    Session,
    Shell,
    Steps,
    bash_blocks,
    commands,
    documents,
    section,
)

OWN_FILE = {"dataset": "file", "dataset_path": "penguins.csv", "target_column": "species"}
ANSWERS = [pytest.param({}, id="sample"), pytest.param(OWN_FILE, id="own-file")]


def _make(project: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project.path,
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _targets(project: Project) -> set[str]:
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_.-]*):", project.read("Makefile"), re.M))


# --- AGENTS.md -----------------------------------------------------------------------------------


@pytest.mark.parametrize("answers", ANSWERS)
def test_agents_md_names_only_commands_and_files_that_exist(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    project = baked(**answers)
    agents = project.read("AGENTS.md")
    assert len(agents.splitlines()) <= 40, "short: a briefing, not a second README"
    package = project.answers["package_name"]
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    groups = [name for group in pyproject["dependency-groups"].values() for name in group]
    requirements = " ".join([*pyproject["project"]["dependencies"], *groups])
    # Made by make setup or make pipeline, not by copier.
    made_later = {".venv", "dvc.lock", "uv.lock", "models/model.joblib", "tests/fixtures/data.csv"}
    made_later.add("schema.yaml")  # with your own file, make setup writes it
    spans = re.findall(r"`([^`]+)`", agents)
    checked = 0
    for span in spans:
        words = span.split()
        if words[0] == "make":
            assert words[1] in _targets(project), f"AGENTS.md: `{span}`: no such make target"
        elif words[0] in {"uv", ".venv/bin/dvc", ".venv/bin/pytest", "dvc", "git"}:
            tool = words[2] if words[:2] == ["uv", "run"] else words[0].rsplit("/", 1)[-1]
            assert tool == "git" or re.search(rf"\b{tool}\b", requirements), span
        elif re.fullmatch(r"[\w.-]+\.py", span):  # a module, somewhere in the package
            assert list((project.path / "src" / package).rglob(span)), span
        elif "/" in span or re.search(r"\.(ya?ml|lock|md|csv|joblib)$", span):
            path = span.replace("src/<package>", f"src/{package}").rstrip("/")
            exists = (project.path / path).exists() or path in made_later
            assert exists or path.startswith("data/raw"), f"AGENTS.md names {span}"
        else:
            continue
        checked += 1
    assert checked >= 20, spans  # the check ran over the commands, not over nothing
    for target in ["setup", "pipeline", "test", "lint", "serve", "predict", "monitor", "update"]:
        assert f"`make {target}`" in agents, f"AGENTS.md does not name make {target}"
    assert "dvc.lock" in agents and "Never" in agents


# --- copier's messages, the names ----------------------------------------------------------------


def test_copier_says_what_to_do_next(template_repo: Path, tmp_path: Path) -> None:
    copier = Path(sys.executable).with_name("copier")
    result = subprocess.run(
        [str(copier), "copy", "--defaults", str(template_repo), "new model"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Next, in new model:" in result.stderr
    assert "cd 'new model'" in result.stderr and "make setup" in result.stderr, result.stderr
    message = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())["_message_after_update"]
    assert "UU" in message and "<<<<<<<" in message and "git add" in message


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Café Model", "cafe-model"), ("Modèle", "modele"), ("Ærø Straße 2", "aero-strasse-2")],
)
def test_names_with_accented_letters_are_welcome(
    baked: Callable[..., Project], name: str, slug: str
) -> None:
    project = baked(project_name=name)
    assert project.answers["package_name"] == slug.replace("-", "_")
    assert tomllib.loads(project.read("pyproject.toml"))["project"]["name"] == slug
    assert project.read("README.md").startswith(f"# {name}\n")


def test_a_name_in_another_script_is_refused_with_what_is_allowed(bake) -> None:
    with pytest.raises(ValueError, match="Latin letters"):
        bake(project_name="Модель")


# --- the READMEs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("answers", ANSWERS)
def test_no_readme_sends_anyone_to_a_url_the_service_does_not_serve(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """BentoML serves the OpenAPI spec at /docs.json and Swagger UI at /: no /docs."""
    project = baked(**answers)
    package = project.answers["package_name"]
    texts = {
        "README.md": project.read("README.md"),
        "AGENTS.md": project.read("AGENTS.md"),
        "service.py": project.read(f"src/{package}/serving/service.py"),
        "template README.md": (TEMPLATE_ROOT / "README.md").read_text(),
        "harness/demo.py": (TEMPLATE_ROOT / "harness" / "demo.py").read_text(),
    }
    texts.update(documents(project.path)[1:])  # the docs/ pages
    for where, text in texts.items():
        assert not re.search(r"/docs(?!\.json)\b", text), f"{where} names /docs"
    assert "`/docs.json`" in texts["README.md"] and "http://localhost:3000/" in texts["README.md"]


@pytest.mark.parametrize("answers", ANSWERS)
def test_readme_commands_need_no_uv_on_path(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """With uv only in .tools/, `uv ...` fails: the README's commands are make targets and
    the environment's own tools (activated), and say how. The docs/ pages too."""
    pages = documents(baked(**answers).path)
    for _page, text in pages:
        for block in bash_blocks(text):
            for command in commands(block):
                assert not re.match(r"(uv|uvx) ", command.text), command
    readme = pages[0][1]
    assert "source .venv/bin/activate" in readme
    for page, text in pages:
        assert "uv run" not in text.replace("`uv run dvc ...` works too", ""), page


def test_template_readme_sections_the_tests_run_are_there() -> None:
    readme = (TEMPLATE_ROOT / "README.md").read_text()
    try_it = [c.text for block in bash_blocks(section(readme, "Try it")) for c in commands(block)]
    assert try_it == ["make demo", "make test"]
    real = bash_blocks(section(readme, "Use it for real"))
    assert len(real) == 2 and all(
        c.text.startswith(("uvx copier", "cd", "make")) for b in real for c in commands(b)
    )
    benchmarks = (TEMPLATE_ROOT / "benchmarks" / "README.md").read_text()
    assert "| step |" in section(benchmarks, "The first hour, timed")


# Files the README's map names that make setup or make pipeline make.
MADE_LATER = {"data/raw", "dvc.lock", "models", "metrics", "plots", "schema.yaml"}
EDITED = ["schema.yaml", "params.yaml", "pipeline/features.py", "pipeline/train.py"]


def _project_map(readme: str) -> dict[str, bool]:
    """The README's map of the project: each path it names, and whether it is marked `*`
    (a file the user edits). Two spaces of indentation a folder level."""
    (tree,) = re.findall(r"^```\n(.*?)^```", section(readme, "What is where"), re.M | re.S)
    paths: dict[str, bool] = {}
    parents: list[str] = []
    for line in tree.splitlines():
        indent, names, mark = re.match(r"( *)([^\s,]+(?:, [^\s,]+)*)\s*(\*?)", line).groups()
        parents = parents[: len(indent) // 2]
        for name in names.split(", "):
            paths["".join(parents) + name] = mark == "*"
        parents.append(names)  # a folder's children follow it, indented
    return paths


@pytest.mark.parametrize("answers", ANSWERS)
def test_readme_is_short_and_maps_the_files_a_user_edits_on_its_first_screen(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    project = baked(**answers)
    readme = project.read("README.md")
    assert len(readme.splitlines()) <= 200, "a reference: the rest is in docs/"
    first_screen = "\n".join(readme.splitlines()[:50])
    assert "## What is where" in first_screen and first_screen.count("```") >= 4, first_screen
    package = f"src/{project.answers['package_name']}/"
    paths = _project_map(readme)
    edited = [path.replace(package, "") for path, mark in paths.items() if mark]
    assert edited == [*EDITED, "docs/model_card_intro.md"], paths
    for path in paths:
        made_later = path.rstrip("/") in MADE_LATER
        assert made_later or (project.path / path).exists(), f"the README's map names {path}"
    for target in ["setup", "pipeline", "test", "serve", "predict", "monitor"]:
        assert f"make {target} " in section(readme, "Start"), target


def test_readme_and_docs_say_the_same_for_the_sample_and_a_file(
    baked: Callable[..., Project],
) -> None:
    """`make adopt-data` turns a project on the sample into one on a file without rendering
    the README or docs/ again: what they say must hold for both (tests/e2e/test_own_data.py
    compares the files after a real adoption)."""
    assert documents(baked().path) == documents(baked(**OWN_FILE).path)


# Links to what the pipeline makes (the plots' SVG images), from docs/.
MADE_BY_PIPELINE = re.compile(r"plots/\w+\.svg")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings: lower case, punctuation dropped, spaces as '-'."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("answers", [*ANSWERS, pytest.param({"task": "regression"}, id="reg")])
def test_every_link_of_the_readme_and_docs_leads_somewhere(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """Each relative link opens a file of the project (or one the pipeline writes), at a
    heading that exists; `documents` also fails on a docs/ page the README does not link."""
    project = baked(**answers)
    checked = 0
    for page, text in documents(project.path):
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (project.path / page).parent / path if path else project.path / page
            file = file.resolve()
            made = MADE_BY_PIPELINE.search(path) is not None
            assert made or file.is_file(), f"{page} links {target}: no such file"
            if anchor:
                assert anchor in _anchors(file.read_text()), f"{page} links {target}: no heading"
            checked += 1
    assert checked >= 15, checked


@pytest.mark.parametrize("answers", ANSWERS)
def test_the_docs_name_only_modules_of_the_package_that_exist(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """The paths under src/ and the modules (`python -m`, `bentoml serve`) the README and docs/
    name are the package's: a module moved or renamed fails here until the text follows."""
    project = baked(**answers)
    package = project.answers["package_name"]
    checked = 0
    for page, text in documents(project.path):
        for path in re.findall(rf"`(src/{package}/[^`\s]*)`", text):
            assert (project.path / path).exists(), f"{page} names {path}"
            checked += 1
        for module in re.findall(rf"\b({package}(?:\.\w+)+)(?::\w+)?\b", text):
            where = project.path / "src" / module.replace(".", "/")
            exists = where.with_suffix(".py").is_file() or (where / "__main__.py").is_file()
            assert exists, f"{page} names the module {module}"
            checked += 1
    assert checked >= 5, checked


# --- make serve, make predict --------------------------------------------------------------------


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_make_serve_on_a_taken_port_says_so_in_one_line(bake, listening: int) -> None:
    project = bake()
    (project.path / "models").mkdir()
    (project.path / "models" / "model.joblib").write_bytes(b"")  # never loaded: no serve
    result = _make(project, "serve", f"PORT={listening}")
    assert result.returncode == 2, result.stdout + result.stderr
    # One line, then make's own "Error 2".
    assert result.stderr.splitlines()[:-1] == [
        f"error: port {listening} is already in use (another service?): stop it, or choose "
        "another port: PORT=8080 make serve, then PORT=8080 make predict"
    ]


@pytest.fixture
def other_service() -> Iterator[int]:
    """An HTTP server whose OpenAPI title is another service's."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"info": {"title": "other-model"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_make_predict_reaches_only_this_projects_service(bake, other_service: int) -> None:
    project = bake()
    wrong = _make(project, "predict", f"PORT={other_service}")
    assert wrong.returncode == 2
    assert (
        f"the service on port {other_service} is 'other-model', not this project's 'my-model'"
        in (wrong.stderr)
    )
    nothing = _make(project, "predict", f"PORT={free_port()}")
    assert nothing.returncode == 2 and "no service answers on port" in nothing.stderr


# --- make pipeline, dvc.yaml ---------------------------------------------------------------------


FAKE_UV = """#!/usr/bin/env bash
# A stand-in for `uv run dvc repro` that fails after DVC recorded a new version of the data.
# (Not `sed -i`: BSD sed, macOS's, reads its next argument as a backup suffix.)
if [ "$*" = "run dvc repro" ]; then
  printf 'outs:\\n- md5: 0000broken\\n  path: customers.csv\\n' >data/raw/customers.csv.dvc
  echo "recorded: $(grep md5 data/raw/customers.csv.dvc)" >&2
  echo "ERROR: failed to reproduce 'prepare'" >&2
  exit 1
fi
exit 0
"""


def test_a_failed_pipeline_leaves_the_dvc_files_as_they_were(bake, tmp_path: Path) -> None:
    project = bake()
    tracked = project.path / "data" / "raw" / "customers.csv.dvc"
    tracked.parent.mkdir(parents=True, exist_ok=True)
    tracked.write_text("outs:\n- md5: 1234good\n  path: customers.csv\n")
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    result = _make(project, "pipeline", f"UV={uv}")
    assert result.returncode != 0
    assert "recorded: - md5: 0000broken" in result.stderr, "the stand-in changed the file"
    assert tracked.read_text() == "outs:\n- md5: 1234good\n  path: customers.csv\n"
    assert "DVC still tracks the data of the last good run" in result.stderr
    assert "dvc checkout" in result.stderr


@pytest.mark.parametrize("answers", [{}, {"task": "regression"}])
def test_each_plot_is_declared_once(baked: Callable[..., Project], answers: dict[str, str]) -> None:
    """A stage-level `plots:` output besides the top-level definitions drew every plot twice."""
    dvc = yaml.safe_load(baked(**answers).read("dvc.yaml"))
    evaluate = dvc["stages"]["evaluate"]
    assert "plots" not in evaluate, "declared as an out (cache: false), drawn by the top level"
    assert {"plots": {"cache": False}} in evaluate["outs"]
    assert all(next(iter(p)).startswith("plots/") for p in dvc["plots"])


# --- CI of a project pushed before make setup ----------------------------------------------------


# Targets that need no environment (no uv run): plain Python or git.
NO_ENVIRONMENT = {"drift-verdict", "drift-summary", "drift-issue", "image-latest"}


def test_every_job_that_needs_the_environment_sets_it_up_first(
    baked: Callable[..., Project],
) -> None:
    """UV_LOCKED=1 without uv.lock fails with "Unable to find lockfile": in every workflow, a
    job's first make target that runs uv is `make ci-setup` (monitor, CD and retrain lacked it)."""
    checked = set()
    for path in sorted((baked().path / ".github" / "workflows").glob("*.yml")):
        workflow = load_workflow(path)
        for job_id, job in workflow["jobs"].items():
            env = {**workflow.get("env", {}), **job.get("env", {})}
            runs = [step.get("run", "") for step in job["steps"]]
            makes = [re.match(r"make (?:--silent )?([\w-]+)", run) for run in runs]
            targets = [m.group(1) for m in makes if m and m.group(1) not in NO_ENVIRONMENT]
            if env.get("UV_LOCKED") != "1" or not targets:
                continue
            makes = targets
            assert makes[0] == "ci-setup", (path.name, job_id, runs)
            checked.add(path.name)
    assert checked == {"ci.yml", "cd.yml", "monitor.yml", "retrain.yml"}
    workflow = load_workflow(baked().path / ".github" / "workflows" / "ci.yml")
    container = workflow["jobs"]["container"]["steps"]
    names = [step["name"] for step in container]
    setup = next(i for i, step in enumerate(container) if step.get("run") == "make ci-setup")
    assert setup < next(i for i, name in enumerate(names) if name.startswith("Build")), names


# --- macOS: bash 3.2 ------------------------------------------------------------------------------

# What bash 3.2, macOS's own /bin/bash, lacks (the bash NEWS file: 4.0 to 5.0).
BASH_4: dict[str, str] = {
    r"\b(mapfile|readarray)\b": "mapfile/readarray (4.0)",
    r"\b(declare|local|typeset)\s+-\w*A": "associative arrays (4.0)",
    r"\$\{[#!]?\w+(\[[^]]*\])?(,,?|\^\^?)\}": "case conversion ${x,,} (4.0)",
    r"\|&": "|& (4.0)",
    r"&>>": "&>> (4.0)",
    r"\bcoproc\b": "coproc (4.0)",
    r";;?&": "case fall-through ;& (4.0)",
    r"\{[^{}\s]+\.\.[^{}\s]+\.\.[^{}\s]+\}": "brace ranges with a step (4.0)",
    r"\bshopt\s+-s\s+(globstar|autocd|checkjobs|lastpipe)": "shopt options (4.0, 4.2)",
    r"\[\[\s+-v\b": "[[ -v name ]] (4.2)",
    r"\b(declare|local|typeset)\s+-\w*n\b": "namerefs (4.3)",
    r"\bwait\s+-n\b": "wait -n (4.3)",
    r"\$\{\w+\[-\d+\]\}": "negative array indices (4.3)",
    r"\$\{\w+@[QEPAa]\}": "${x@Q} (4.4)",
    r"\bEPOCH(SECONDS|REALTIME)\b": "$EPOCHSECONDS (5.0)",
}


def bash_4_features(text: str) -> list[str]:
    """The bash 4+ features in a script (or a Makefile's recipes), as 'line N: feature'."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        found += [f"line {number}: {what}" for rx, what in BASH_4.items() if re.search(rx, code)]
    return found


@pytest.mark.parametrize("answers", ANSWERS)
def test_the_generated_scripts_run_on_macos_bash_3_2(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """`make setup` (scripts/setup.sh) and `make ci-data` ran mapfile, which macOS's bash 3.2
    lacks; the template's CI runs `make setup` with it on macOS (tests.yml)."""
    project = baked(**answers)
    scripts = [*sorted(project.path.glob("scripts/*.sh")), project.path / "Makefile"]
    assert {"setup.sh", "template_sync.sh"} <= {p.name for p in scripts}
    found = {p.name: bash_4_features(p.read_text()) for p in scripts}
    assert not any(found.values()), found


def test_the_bash_3_2_check_finds_bash_4_features() -> None:
    script = 'mapfile -t files <<<"$x"\ndeclare -A seen\necho "${name,,}" |& cat\n# mapfile\n'
    assert bash_4_features(script) == [
        "line 1: mapfile/readarray (4.0)",
        "line 2: associative arrays (4.0)",
        "line 3: case conversion ${x,,} (4.0)",
        "line 3: |& (4.0)",
    ]
    assert bash_4_features('while IFS= read -r f; do a+=("$f"); done <<<"$x"\n') == []


# --- the README runner's checks can fail ---------------------------------------------------------


def test_a_readme_command_that_fails_or_prints_otherwise_fails_the_run(tmp_path: Path) -> None:
    shell = Shell(tmp_path, tool_env())
    session = Session(shell, Service(shell, tmp_path / "logs"), Steps("checks"))
    try:
        session.run(Command("cd /", "go to the root"))
        assert shell.cwd() == Path("/"), "cd carries over to the next command"
        with pytest.raises(AssertionError, match="exited 3"):
            session.run(Command("bash -c 'exit 3'", ""))
        with pytest.raises(AssertionError, match="printed"):
            session.run(Command("echo something else", '"Data and pipelines are up to date."'))
        session.run(Command("echo Data and pipelines are up to date.", '"Data and pipelines'))
        with pytest.raises(AssertionError, match="exited 1"):
            session.run(Command("read answer", "a prompt reads /dev/null, not the next lines"))
    finally:
        shell.close()


def test_the_docs_pages_are_all_linked_from_the_readme(tmp_path: Path) -> None:
    """A page of docs/ the README does not link, or a link to no page, fails the README test."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n")
    readme = tmp_path / "README.md"
    readme.write_text("[b](docs/b.md#b), then [a](docs/a.md), [b again](docs/b.md)\n")
    assert [page for page, _ in documents(tmp_path)] == ["README.md", "docs/b.md", "docs/a.md"]
    readme.write_text("[b](docs/b.md)\n")
    with pytest.raises(AssertionError, match=r"links not \['docs/a.md'\]"):
        documents(tmp_path)
    readme.write_text("[a](docs/a.md), [b](docs/b.md), [c](docs/c.md)\n")
    with pytest.raises(AssertionError, match=r"no such page \['docs/c.md'\]"):
        documents(tmp_path)
