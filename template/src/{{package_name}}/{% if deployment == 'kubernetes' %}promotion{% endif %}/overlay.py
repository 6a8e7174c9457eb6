"""Pin the service's image in an environment's overlay: the edit a promotion proposes.

``deploy/overlays/<env>/kustomization.yaml`` pins the image named ``model-service`` (the
name every base manifest uses) by digest: ``images: [{name: model-service, newName:
REGISTRY/REPO, digest: sha256:...}]``. This sets that one entry as ``kustomize edit set
image model-service=REF@DIGEST`` would, with ruamel.yaml so the file's comments and the
other entries stay as they are (kustomize is not needed where this runs).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..settings import UserError
from .images import DIGEST

IMAGE_NAME = "model-service"
OVERLAYS = Path("deploy/overlays")
ALIASES = {"prod": "production"}  # GTO's default stage name, and the overlay it deploys


def overlay_of(stage: str, root: Path = OVERLAYS) -> Path:
    """The overlay a GTO stage deploys: ``deploy/overlays/<stage>`` (``prod``: production)."""
    for name in (stage, ALIASES.get(stage)):
        if name and (root / name / "kustomization.yaml").is_file():
            return root / name
    known = sorted(p.parent.name for p in root.glob("*/kustomization.yaml"))
    raise UserError(
        f"no overlay for stage {stage!r}: {root} has {', '.join(known) or 'none'} "
        "(a stage deploys the overlay of its name; prod deploys production)"
    )


def set_image(overlay: Path, image: str, digest: str) -> bool:
    """Pin ``image@digest`` as the overlay's model-service image; whether the file changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    if not DIGEST.match(digest):
        raise UserError(f"{digest!r} is not an image digest (sha256:<64 hex digits>)")
    path = overlay / "kustomization.yaml"
    yaml = YAML()  # round trip: comments, order and quoting kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # a long digest stays on its line
    before = path.read_text()
    if re.search(r"^ +- ", before, re.MULTILINE):  # lists indented under their key: kept so
        yaml.indent(mapping=2, sequence=4, offset=2)
    document = yaml.load(before)
    images = document.setdefault("images", [])
    entry = next((e for e in images if e.get("name") == IMAGE_NAME), None)
    if entry is None:
        entry = CommentedMap(name=IMAGE_NAME)
        images.append(entry)
    entry["newName"] = image.lower()
    entry.pop("newTag", None)  # kustomize's set image drops the tag for a digest too
    entry["digest"] = digest
    with path.open("w") as out:
        yaml.dump(document, out)
    return path.read_text() != before


def deployed_image(overlay: Path) -> str:
    """``NAME@DIGEST``: the model-service image the overlay pins (what the environment runs)."""
    import yaml

    path = overlay / "kustomization.yaml"
    images = (yaml.safe_load(path.read_text()) or {}).get("images") or []
    entry = next((e for e in images if e.get("name") == IMAGE_NAME), None)
    if entry is None or not DIGEST.match(str(entry.get("digest", ""))):
        raise UserError(f"{path} pins no {IMAGE_NAME} image by digest: promote a version first")
    return f"{entry.get('newName', IMAGE_NAME)}@{entry['digest']}"
