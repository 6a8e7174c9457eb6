"""The project's data, one entry point: adopt a file, set the data up, check it in CI.

    python -m <package>.contract.ingest adopt FILE --target COLUMN [--id C] [--timestamp C]
    python -m <package>.contract.ingest ensure    # make setup: the data, and the test fixture
    python -m <package>.contract.ingest verify    # make ci-data: the data on a CI runner
    python -m <package>.contract.ingest fixture   # redraw tests/fixtures/data.csv from data.raw

``adopt`` (``make adopt-data``) makes a file the training data (``adopt.py``). ``ensure``
adopts the file ``copier copy`` recorded in ``data/dataset.yml`` where ``schema.yaml`` is
missing, then makes sure every DVC-tracked data file is here: present, pulled from the DVC
remote, or (the bundled sample) generated and tracked; and draws the test fixture.
``verify`` gets the data where only the git repository is, such as a CI runner:

- ``DVC_PULL=true``: ``dvc pull`` (the workflows set it once the remote's credentials are
  configured), then ``dvc status``;
- otherwise the bundled sample is rebuilt (deterministic: the same bytes) and checked against
  the committed ``.dvc`` files, file by file: a project whose ``.dvc`` files track other data
  fails with what to do, instead of training on the sample. A file present is never
  overwritten;
- your own data without the remote's credentials: nothing to train on. With
  ``CI_DATA_OPTIONAL=true`` it says so in the job summary (``CI_DATA_STEPS`` names what is
  skipped, the pipeline by default) and sets the step output ``available=false``, so the
  later steps are skipped and the run stays green; otherwise it fails with what to configure.

Progress goes to stdout, as a shell step's would; mistakes to stderr, in one line.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..settings import UserError, load_params, run_cli
from .adopt import (
    DATASET_FILE,
    FIXTURE,
    adopt,
    from_config,
    project_task,
    redraw_fixture,
    yaml_mapping,
)
from .schema import SCHEMA_FILE

log = logging.getLogger(__name__)
# Progress lines, on stdout (what `make setup` and `make ci-data` show as they go).
progress = logging.getLogger(f"{__name__}.progress")

SAMPLE_RAW = "data/raw/customers.csv"
NO_SAMPLE = (
    "CI can rebuild only the bundled sample. For your own data, give CI the DVC remote: see "
    "the README, section 'CI/CD' (a cloud remote, its credentials through OIDC)."
)


def bundled_sample() -> dict[str, dict] | None:
    """The bundled sample's files, while the project trains on it (else None)."""
    if str(load_params("data")["raw"]) != SAMPLE_RAW:
        return None
    try:
        from . import sample_data
    except ImportError:  # make adopt-data removed it with the sample
        return None
    return sample_data.BUNDLED


def dvc(*args: str, quiet: bool = False) -> None:
    """Run DVC from this environment; its own output is shown unless ``quiet``."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=quiet, text=True, check=False
    )
    if result.returncode != 0:
        said = (result.stderr or result.stdout or "").strip() if quiet else ""
        raise UserError(f"dvc {' '.join(args)} failed{': ' + said if said else ''}")


def ensure() -> None:
    """``make setup``'s data step: safe to rerun, it only adds what is missing."""
    if DATASET_FILE.is_file() and not SCHEMA_FILE.is_file():
        config = from_config(DATASET_FILE)
        roles = (config.get("id") or None, config.get("timestamp") or None)
        adopt(Path(config["file"]), config["target"], *roles, task=project_task(), record=False)
    sample = bundled_sample()
    for name in sample or [str(load_params("data")["raw"])]:
        _ensure_file(Path(name), sample)
    if not FIXTURE.exists():
        # The small sample the tests run on, committed, so `make test` needs no DVC remote.
        redraw_fixture()


def _ensure_file(path: Path, sample: dict[str, dict] | None) -> None:
    tracked = Path(f"{path}.dvc")
    if path.is_file():
        progress.info("%s: present", path)
    elif tracked.is_file():
        progress.info("%s: tracked by DVC but not here: pulling it", path)
        try:
            dvc("pull", str(tracked))
        except UserError:
            raise UserError(
                f"could not pull {path} from the DVC remote; check 'dvc remote list' (in .venv)"
            ) from None
    elif sample is not None:
        _write_sample(path, sample)
        dvc("add", "--quiet", str(path))
    else:
        raise UserError(
            f"{path} (data.raw in params.yaml) is missing and not tracked by DVC: adopt a "
            "data file with: make adopt-data FILE=path/to/table.csv TARGET=column"
        )


def _write_sample(path: Path, sample: dict[str, dict]) -> None:
    from . import sample_data

    frame = sample_data.generate(**sample[path.as_posix()])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    log.info("wrote %d rows to %s (the bundled sample)", len(frame), path)


def verify() -> None:
    """``make ci-data``: the DVC-tracked data on a machine that has only the repository."""
    if os.environ.get("DVC_PULL", "false") == "true":
        progress.info("\n==> dvc pull (the DVC remote's credentials are configured)")
        dvc("pull")
        dvc("status")
        _output("available", "true")
        return
    sample = bundled_sample()
    if sample is None:
        _own_data(Path(str(load_params("data")["raw"])))
        return
    progress.info("\n==> no DVC remote credentials here: rebuilding the bundled sample data")
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.dvc"], capture_output=True, text=True, check=False
    ).stdout.split()
    for name in tracked:
        if name.removesuffix(".dvc") not in sample:
            raise UserError(f"{name} is not part of the bundled sample. {NO_SAMPLE}")
    for name in sample:
        _verify_sample_file(Path(name), sample)
    _output("available", "true")


def _verify_sample_file(path: Path, sample: dict[str, dict]) -> None:
    tracked = Path(f"{path}.dvc")
    if not tracked.is_file():
        raise UserError(
            f"{tracked} is not committed (run make setup, then commit the .dvc files). {NO_SAMPLE}"
        )
    made = not path.exists()
    if made:
        _write_sample(path, sample)
    else:
        progress.info("%s: present, left as it is", path)
    # The content hash the .dvc file records (DVC 3: the file's plain md5) against the file's.
    outs = yaml_mapping(tracked).get("outs") or [{}]
    expected = str(outs[0].get("md5", ""))
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    if actual != expected:
        if made:
            path.unlink()
        raise UserError(
            f"{tracked} does not track the bundled sample (md5 {expected}, the sample's is "
            f"{actual}). {NO_SAMPLE}"
        )
    # Into DVC's cache, so dvc status is clean; the .dvc file is unchanged (same hash).
    dvc("commit", "--force", "--quiet", str(tracked))
    progress.info("%s: matches %s", path, tracked)


def _own_data(raw: Path) -> None:
    """Your own data, without the DVC remote's credentials: present, or nothing to train on."""
    if raw.is_file():
        progress.info("%s: present, left as it is", raw)
        _output("available", "true")
        return
    steps = os.environ.get("CI_DATA_STEPS", "")
    message = (
        f"The training data ({raw}) lives in the DVC remote, which this run cannot reach: no "
        "credentials are configured (DVC_PULL is not true)."
    )
    if not steps:
        message += " The tests ran on tests/fixtures/data.csv."
    message += (
        " To run it here too, use a cloud DVC remote and give the workflows its credentials "
        "(README, section 'CI/CD')."
    )
    title = f"{steps or 'Pipeline'} not run"
    _summary(f"### {title}: no access to the data\n\n{message}\n")
    if os.environ.get("CI_DATA_OPTIONAL", "false") != "true":
        raise UserError(message)
    progress.info("::notice title=%s::%s", title, message)
    _output("available", "false")


def _output(name: str, value: str) -> None:
    """A step output for the workflow (GITHUB_OUTPUT), where there is one."""
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as outputs:
            outputs.write(f"{name}={value}\n")


def _summary(markdown: str) -> None:
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    adopting = commands.add_parser("adopt", help="make a CSV or parquet file the training data")
    adopting.add_argument("file", type=Path, help="CSV or parquet file to adopt")
    adopting.add_argument("--target", required=True, help="the column to predict")
    adopting.add_argument("--id", default="", help="an identifier column, carried to predictions")
    adopting.add_argument("--timestamp", default="", help="a time column: split train/test by it")
    commands.add_parser("ensure", help="make setup: every data file here, and the test fixture")
    commands.add_parser("verify", help="make ci-data: the data on a CI runner")
    commands.add_parser("fixture", help="redraw tests/fixtures/data.csv from data.raw")
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress.addHandler(handler)
    progress.propagate = False
    if args.command == "adopt":
        if not args.target:
            raise UserError("give the file and its target column: FILE=path TARGET=column")
        adopt(args.file, args.target, args.id, args.timestamp, task=project_task())
    elif args.command == "ensure":
        ensure()
    elif args.command == "verify":
        verify()
    else:
        redraw_fixture()
    return 0


if __name__ == "__main__":
    run_cli(main)
