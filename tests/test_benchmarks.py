"""What the benchmarks rely on without running one: benchmarks/restructure_compare.py's
"before" commit is in the history and has the flat layout, and both its Makefile and today's
say how the service and the batch CLI start (the benchmark reads them there)."""

from __future__ import annotations

import pytest

from benchmarks import restructure_compare as compare
from harness.project import TEMPLATE_ROOT, git, has_commit, require


def _before_available() -> None:
    require(
        has_commit(compare.BEFORE),
        f"commit {compare.BEFORE} of the template's history (a full clone: git fetch --unshallow)",
    )


def test_the_before_commit_generates_the_flat_layout_and_now_the_parts() -> None:
    _before_available()
    package = "template/src/{{package_name}}"
    then = git(TEMPLATE_ROOT, "ls-tree", "--name-only", compare.BEFORE, f"{package}/").split()
    assert f"{package}/service.py.jinja" in then and f"{package}/predict.py" in then, then
    assert not any(name.endswith(("/serving", "/contract", "/pipeline")) for name in then), then
    assert (TEMPLATE_ROOT / package / "serving" / "service.py.jinja").is_file()


@pytest.mark.parametrize(
    ("ref", "service", "batch"),
    [
        (compare.BEFORE, "service:ModelService", "predict"),
        (None, "serving.service:ModelService", "serving.batch"),
    ],
)
def test_the_benchmark_finds_the_service_and_batch_cli_in_the_makefile(
    ref: str | None, service: str, batch: str
) -> None:
    if ref is None:
        makefile = (TEMPLATE_ROOT / "template" / "Makefile.jinja").read_text()
    else:
        _before_available()
        makefile = git(TEMPLATE_ROOT, "show", f"{ref}:template/Makefile.jinja")
    assert compare.SERVE.search(makefile)[1] == service
    assert compare.PREDICT_BATCH.search(makefile)[1] == batch


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--project", "x"], "--before-project and --project go together"),
        (["--before", "0" * 40], "no commit 0000000000000000000000000000000000000000"),
        (["--rows", "0"], "must be positive"),
    ],
)
def test_the_benchmark_refuses_bad_arguments_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        compare.arguments(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
