"""Migration to 0.2.0: `copier update` runs this in a project made before 0.2.0, after the update.

Since 0.2.0 the project's tests run on tests/fixtures/data.csv, a small sample of the data that
`make setup` draws and the project commits, and the model is saved in a new bundle format. A
project made before has neither. This draws the fixture when the data is here (as `make setup`
would), checks whether the updated code loads the model (one trained minutes ago does), and
says what is left to do. It never fails the update: what it cannot do, it says.

It runs on the project as updated (the newest layout: contract/ingest.py, model.py).

Run with the interpreter that runs copier, from the project's folder:
    python migrations/v0.2.0.py PACKAGE
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path("tests/fixtures/data.csv")
MODEL = Path("models/model.joblib")
# Run with the project's environment: loads the model as the service would.
LOAD_CHECK = """\
import pathlib, sys
from {package}.model import load_model
from {package}.settings import UserError
try:
    load_model(pathlib.Path("{model}"))
except UserError:
    sys.exit(3)  # the project's own loader refused it: not a model of this version
"""


def find_uv() -> str | None:
    """uv as the project's Makefile finds it: UV, then PATH, then the private copy in .tools/."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), ".tools/bin/uv"):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return candidate
    return None


def main(package: str) -> int:
    print("migration 0.2.0: the tests now run on tests/fixtures/data.csv (drawn by make setup)")
    if FIXTURE.exists():
        print(f"  {FIXTURE}: present")
    else:
        uv = find_uv()
        command = [uv or "uv", "run", "python", "-m", f"{package}.contract.ingest", "fixture"]
        drawn = uv is not None and subprocess.run(command, check=False).returncode == 0
        if drawn and FIXTURE.exists():
            print(f"  {FIXTURE}: drawn from the data; commit it with the update")
        else:
            print(
                f"  {FIXTURE}: could not be drawn here (no uv, or the data is not here: "
                "`dvc pull`); run `make setup`, then commit it"
            )
    if MODEL.exists():
        print(f"  {MODEL}: {model_state(find_uv(), package)}")
    return 0


def model_state(uv: str | None, package: str) -> str:
    """Whether the updated code loads the model: one trained before 0.2.0 is in the old format."""
    if uv is None:
        return "not checked here (no uv); if `make serve` refuses it, retrain with `make pipeline`"
    check = LOAD_CHECK.format(package=package, model=MODEL)
    result = subprocess.run([uv, "run", "python", "-c", check], capture_output=True, check=False)
    if result.returncode == 0:
        return "the updated code loads it: nothing to retrain for this version"
    if result.returncode == 3:
        return "saved in the old format: retrain with `make pipeline`"
    return "could not be checked here; if `make serve` refuses it, retrain with `make pipeline`"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
