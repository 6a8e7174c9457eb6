"""End to end: the first hour of a new user, who follows only the READMEs.

Every command runs in one terminal session (harness/readme.py) on a machine without uv on its
PATH, as printed in the README (a generated project's: then in each docs/ page it links, in the
order it links them), but in the form the README gives for local use:

- `uvx copier` is `copier` from a virtual environment (the template README's third way), the
  template is this working tree (tests/conftest.py: `template_repo`) instead of
  `gh:copier-mlops/copier-mlops`, and `--defaults` stands for pressing Enter at each question;
- the service gets a free port instead of 3000 and 8080 (`PORT`, and the URLs rewritten), and
  runs in the background while the commands meant for "another terminal" run;
- `git push origin` pushes to a bare repository standing in for GitHub; the container
  commands are left to tests/e2e/test_container.py (no Docker engine here: see SKIP).

`test_first_hour` and `test_readme_commands_run_in_order` print the wall time of each step
(`pytest -s`): "The first hour, timed" in benchmarks/README.md records them. Also here: a push
to CI of a project as `copier copy` left it, and a `copier update` that conflicts.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.gha import JobResult, LocalRunner, StepFailed, github_context
from harness.project import Project, bake_project, free_port, git, tool_env
from harness.readme import (
    Service,
    Session,
    Shell,
    Steps,
    bash_blocks,
    commands,
    documents,
    no_uv_env,
    section,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    session = Shell(tmp_path, no_uv_env(tmp_path / "bin"))
    yield session
    session.close()


def _table(path: Path, target: str, rows: int, seed: int) -> Path:
    """A small table of the user's own: numbers, an integer year, a category, a target."""
    rng = random.Random(seed)
    lines = [f"bill_length_mm,flipper_length_mm,year,island,{target}"]
    species = {"Adelie": (38.8, 190), "Gentoo": (47.5, 217), "Chinstrap": (48.8, 196)}
    for index in range(rows):
        name = list(species)[index % 3]
        length, flipper = species[name]
        island = rng.choice(["Biscoe", "Dream", "Torgersen"])
        lines.append(
            f"{rng.gauss(length, 2.5):.1f},{round(rng.gauss(flipper, 6))},"
            f"{rng.choice([2007, 2008, 2009])},{island},{name}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the first hour ------------------------------------------------------------------------------


def test_first_hour(template_repo: Path, tmp_path: Path, shell: Shell) -> None:
    steps = Steps("The first hour")
    readme = (template_repo / "README.md").read_text()
    service = Service(shell, tmp_path / "logs")
    session = Session(shell, service, steps)
    _try_it_from_a_fresh_clone(readme, template_repo, tmp_path, session)
    project, generated = _use_it_for_real(readme, template_repo, tmp_path, session)
    _serve_and_predict(project, session)
    _broken_data_and_the_way_back(project, generated, session)
    steps.report()


def _try_it_from_a_fresh_clone(
    readme: str, template_repo: Path, tmp_path: Path, session: Session
) -> None:
    """A fresh clone; "Try it": make demo (make test is this suite)."""
    shell, steps = session.shell, session.steps
    clone = tmp_path / "copier-mlops"
    steps.run("git clone", shell, f"git clone --quiet {template_repo} {clone} && cd {clone}")
    try_it = commands(bash_blocks(section(readme, "Try it"))[0])
    assert [c.text for c in try_it] == ["make demo", "make test"]
    start = time.monotonic()
    demo = shell.check("make demo", timeout=900)
    steps.add("make demo (fresh clone, no uv on PATH)", time.monotonic() - start)
    assert "wall time of each step" in demo and "drift detected" in demo, demo[-3000:]
    assert (clone / "demo" / "my-model" / "reports" / "drift.html").is_file()
    session.run(try_it[1])


def _use_it_for_real(
    readme: str, template_repo: Path, tmp_path: Path, session: Session
) -> tuple[Project, str]:
    """A second project, with non-default answers: "Use it for real" on one's own table."""
    shell = session.shell
    own = tmp_path / "own"
    own.mkdir()
    _table(own / "penguins.csv", "species", rows=600, seed=1)
    shell.check(f"cd {own} && export PORT={free_port()}")
    session.places = {"gh:copier-mlops/copier-mlops": str(template_repo)}
    for command in commands(bash_blocks(section(readme, "Use it for real"))[1]):
        session.run(command)
    project = Project(shell.cwd(), {})
    assert project.path == own / "my-model" and project.has_file("schema.yaml")
    generated = project.read("README.md")
    for command in commands(bash_blocks(generated)[1]):  # activate; the first commit
        session.run(command)
    assert shell.env("VIRTUAL_ENV") == str(project.path / ".venv")
    assert shutil.which("uv", path=shell.env("PATH")) is None
    return project, generated


def _serve_and_predict(project: Project, session: Session) -> None:
    """Serve on another port, as the README says, and predict; the URLs it names answer."""
    shell, steps, service = session.shell, session.steps, session.service
    port = free_port()
    seconds = service.start(f"PORT={port} make serve", port)
    steps.add(f"PORT={port} make serve (until /readyz answers)", seconds)
    predicted = steps.run("PORT=... make predict", shell, f"PORT={port} make predict")
    assert '"prediction"' in predicted and '"probabilities"' in predicted, predicted
    for path in ["/", "/docs.json", "/readyz", "/livez", "/metrics"]:
        assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 200, path
    # The port is taken now: one line, no traceback. Nothing on the first port any more.
    code, taken = shell.run(f"PORT={port} make serve", timeout=60)
    assert code == 2 and "Traceback" not in taken, taken
    assert f"port {port} is already in use" in taken and len(taken.splitlines()) <= 2, taken
    code, nothing = shell.run(f"PORT={free_port()} make predict")
    assert code == 2 and "no service answers on port" in nothing, nothing
    _integers_beyond_float64_refused(project, shell, port)
    service.stop()


def _integers_beyond_float64_refused(project: Project, shell: Shell, port: int) -> None:
    """The service refuses what the batch CLI refuses (|x| < 2**63 as float64)."""
    record = json.loads(project.read("examples/request.json"))["records"][0]
    for year, status in [(2**63 - 513, 200), (2**63 - 512, 400), (10**30, 400)]:
        body = {"records": [{**record, "year": year}]}
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=body)
        assert answer.status_code == status, (year, answer.text)
    batch = project.path / "reports" / "years.csv"
    batch.parent.mkdir(exist_ok=True)
    rows = [{**record, "year": year} for year in (2**63 - 513, 2**63 - 512)]
    batch.write_text(
        ",".join(rows[0]) + "\n" + "\n".join(",".join(map(str, r.values())) for r in rows) + "\n"
    )
    code, refused = shell.run("make predict-batch INPUT=reports/years.csv OUTPUT=reports/out.csv")
    assert code == 2 and "'year': 1 row(s) not of type integer (row 2)" in refused, refused


def _broken_data_and_the_way_back(project: Project, generated: str, session: Session) -> None:
    """Break the data: make pipeline stops with one line; the .dvc file still tracks the last
    good data; the README's way back restores it."""
    shell, steps = session.shell, session.steps
    raw = project.path / "data" / "raw" / "penguins.csv"
    good = raw.read_bytes()
    lines = good.decode().splitlines()
    lines[5] = "not-a-number," + lines[5].split(",", 1)[1]
    raw.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    code, failed = shell.run("make pipeline")
    steps.add("make pipeline on broken data (fails)", time.monotonic() - start)
    assert code != 0 and "Traceback" not in failed, failed
    assert "'bill_length_mm': 1 row(s) not of type float (row 5)" in failed, failed
    assert "DVC still tracks the data of the last good run" in failed, failed
    assert git(project.path, "status", "--porcelain") == "", "the .dvc file changed"
    after_failure = section(project.read("docs/data.md"), "When a pipeline run fails on bad data")
    for command in commands(bash_blocks(after_failure)[0]):
        session.run(command)
    assert raw.read_bytes() == good
    steps.run("make pipeline (restored: nothing to rerun)", shell, "make pipeline")


# --- every README command, in order --------------------------------------------------------------


def test_readme_commands_run_in_order(template_repo: Path, tmp_path: Path, shell: Shell) -> None:
    steps = Steps("The READMEs, command by command")
    service = Service(shell, tmp_path / "logs")
    table = _table(tmp_path / "table.csv", "column_to_predict", rows=400, seed=2)
    session = Session(
        shell,
        service,
        steps,
        **{"gh:copier-mlops/copier-mlops": str(template_repo), "path/to/table.csv": str(table)},
    )
    home = tmp_path / "home"
    home.mkdir()
    shell.check(f"cd {home} && export PORT={free_port()}")
    try:
        readme = (template_repo / "README.md").read_text()
        for command in commands(bash_blocks(section(readme, "Use it for real"))[0]):
            session.run(command)
        project = Project(shell.cwd(), {})
        assert project.path == home / "my-model"
        origin = tmp_path / "origin.git"  # the stand-in for GitHub
        git(tmp_path, "init", "--quiet", "--bare", str(origin))
        git(project.path, "remote", "add", "origin", str(origin))

        # The README, then each docs/ page in the order the README links them.
        for _page, text in documents(project.path):
            for command in (c for block in bash_blocks(text) for c in commands(block)):
                output = session.run(command)
                if command.text == "dvc plots show":
                    _each_plot_once(shell)
                if output is not None and command.text.startswith("make release-model"):
                    assert "dvc push" in output and "uv run" not in output, output
        assert git(project.path, "status", "--porcelain") == "", "the README left changes"
        assert "my-model#prod#1" in git(origin, "tag")
    finally:
        service.stop()
        steps.report()


def _each_plot_once(shell: Shell) -> None:
    """`dvc plots show` draws each plot of dvc.yaml once, with its title (issue: twice)."""
    shown = json.loads(shell.check("dvc plots show --json"))["data"]
    titles = {name: [p["content"]["title"]["text"] for p in plots] for name, plots in shown.items()}
    assert sorted(titles) == ["plots/importance.csv", "plots/predictions.csv", "plots/roc.csv"]
    assert titles["plots/predictions.csv"] == ["Confusion matrix (test split)"], titles


# --- pushed before make setup --------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["sample", "file"])
def test_first_push_before_setup_is_green(
    template_repo: Path, tmp_path: Path, dataset: str
) -> None:
    """CI on a project pushed as `copier copy` left it: set up by CI itself with one notice,
    or, with the user's own file (not in the repository), a notice saying what to do."""
    answers: dict[str, str] = {}
    if dataset == "file":
        answers = {
            "dataset": "file",
            "dataset_path": str(_table(tmp_path / "penguins.csv", "species", 300, 3)),
            "target_column": "species",
        }
    project = bake_project(template_repo, tmp_path / "my-model", **answers)
    git(project.path, "init", "--quiet", "--initial-branch=main")
    project.commit("Initial commit from copier copy")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project.path), str(origin))
    sha = git(origin, "rev-parse", "main").strip()
    runner = _runner_outside_ci(origin, tmp_path / "run", sha)
    # The container job's set-up is the same `make ci-setup` step (test_ci_steps runs it).
    jobs = ["lint", "test", "pipeline"] if dataset == "sample" else ["test", "pipeline"]
    results = runner.run(project.path / ".github" / "workflows" / "ci.yml", jobs)
    if dataset == "sample":
        _ci_set_itself_up(results, jobs)
    else:
        _ci_says_what_to_do(results)
    _other_workflows_before_setup(runner, project, sha, dataset)


def _runner_outside_ci(origin: Path, folder: Path, sha: str) -> LocalRunner:
    """A runner of the push to main, with none of this machine's own CI variables."""
    env = tool_env()
    for key in list(env):
        if key.startswith(("GITHUB_", "RUNNER_")) or key in {"DRY_RUN", "CI"}:
            del env[key]
    return LocalRunner(
        origin,
        folder,
        base_env=env,
        github=github_context("push", repository="octo/my-model", sha=sha),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )


def _ci_set_itself_up(results: dict[str, JobResult], jobs: list[str]) -> None:
    assert {job: r.result for job, r in results.items()} == dict.fromkeys(jobs, "success")
    for job in ("lint", "test", "pipeline"):
        assert "### Set up by CI" in results[job].summary, results[job].summary
    assert " passed" in results["test"].step("Tests").output
    assert results["pipeline"].outputs == {"trained": "true"}


def _ci_says_what_to_do(results: dict[str, JobResult]) -> None:
    assert {job: r.result for job, r in results.items()} == {
        "test": "success",
        "pipeline": "success",
    }
    for job in ("test", "pipeline"):
        assert "### Not set up yet" in results[job].summary, results[job].summary
        assert "make setup" in results[job].summary
    assert results["test"].step("Tests").conclusion == "skipped"
    assert results["pipeline"].step("Pipeline").conclusion == "skipped"


def _other_workflows_before_setup(
    runner: LocalRunner, project: Project, sha: str, dataset: str
) -> None:
    """The other workflows under UV_LOCKED=1 set the project up too (they failed with "Unable
    to find lockfile"): the scheduled monitor's drift job is green, and says why."""
    runner.github = github_context("schedule", repository="octo/my-model", sha=sha)
    workflows = project.path / ".github" / "workflows"
    drift = runner.run(workflows / "monitor.yml", ["drift"])["drift"]
    assert drift.result == "success"
    said = drift.step("Set up the project").output
    assert "Unable to find lockfile" not in said, said
    if dataset == "sample":
        assert "### Set up by CI" in drift.summary, drift.summary
        assert "### Drift: not enough traffic to decide" in drift.summary, drift.summary
        return
    assert "### Not set up yet" in drift.summary, drift.summary
    assert drift.step("Drift report").conclusion == "skipped"
    # Retraining by hand asks for data there is none of: it fails, saying so.
    runner.github = github_context("workflow_dispatch", repository="octo/my-model", sha=sha)
    with pytest.raises(StepFailed, match=r"failed at step 'Data") as failed:
        runner.run(workflows / "retrain.yml")
    assert "lives in the DVC remote, which this run cannot reach" in str(failed.value)
    assert "Unable to find lockfile" not in str(failed.value)


# --- copier update with a conflict ---------------------------------------------------------------


def test_update_conflict_is_loud(template_repo: Path, tmp_path: Path) -> None:
    template = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(template_repo), str(template))
    project = bake_project(template, tmp_path / "my-model")
    git(project.path, "init", "--quiet", "--initial-branch=main")
    project.commit("Initial commit")
    params = project.path / "params.yaml"
    params.write_text(params.read_text().replace("drift_share: 0.3 ", "drift_share: 0.4 "))
    project.commit("Tune the drift threshold")
    source = template / "template" / "params.yaml.jinja"
    source.write_text(source.read_text().replace("drift_share: 0.3 ", "drift_share: 0.25 "))
    git(template, "commit", "--quiet", "--all", "-m", "v0.2.0")
    git(template, "tag", "v0.2.0")

    update = project.run("make", "update", check=False, timeout=600)
    assert update.returncode == 2, update.stdout + update.stderr  # make: Error 1
    assert "!!! CONFLICTS" in update.stderr and "!!!     params.yaml" in update.stderr
    assert "UU" in update.stderr, "copier's closing message says how conflicts show"
    pipeline = project.run("make", "pipeline", check=False)
    assert pipeline.returncode == 2, pipeline.stdout + pipeline.stderr
    assert "unresolved conflicts" in pipeline.stderr and "params.yaml" in pipeline.stderr
    assert "YAML" not in pipeline.stderr, "stopped before DVC read the file"

    ours = re.compile(r"<<<<<<< .*?\n(.*?)=======\n.*?>>>>>>> .*?\n", re.S)
    params.write_text(ours.sub(r"\1", params.read_text()))
    git(project.path, "add", "params.yaml")
    project.run("make", "no-conflicts")
    assert "drift_share: 0.4" in params.read_text()

    # Resolved and committed; the next version updates cleanly. What the messages say to run
    # shows the change (copier stages nothing: `git diff --staged` would show none).
    project.commit("Update from the template")
    makefile = template / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "\n# Added in v0.3.0\n")
    git(template, "commit", "--quiet", "--all", "-m", "v0.3.0")
    git(template, "tag", "v0.3.0")
    clean = project.run("make", "update", timeout=600)
    said = clean.stdout + clean.stderr
    assert "Updated. Next:" in said and "git diff HEAD" in said, said
    assert "--staged" not in said, said
    assert "# Added in v0.3.0" in git(project.path, "diff", "HEAD")
    assert git(project.path, "diff", "--staged") == ""
