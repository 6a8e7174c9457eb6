"""Labels that came back later (ground truth), joined to the served predictions by request id:
CSV or parquet files under ``logs/feedback`` (``PREDICTION_FEEDBACK``, ``--feedback``)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ..contract.schema import TEXT_KINDS, Schema
from ..contract.tables import validate
from ..serving import prediction_log
from ..settings import UserError

FEEDBACK_URL = "logs/feedback"


LABEL_FILES = (".csv", ".parquet")


def read_feedback(url: str, schema: Schema) -> pd.DataFrame:
    """The labels under ``url`` (every CSV and parquet file, in name order; a later label for
    the same record wins): columns ``_request_id``, ``_record`` and the target, typed as the
    schema says. Empty when there are none. A file without the columns, or with a value that
    is not a valid target, is a UserError naming the file (and the rows)."""
    target = schema.target
    keys = [prediction_log.REQUEST_ID, prediction_log.RECORD]
    empty = pd.DataFrame(columns=[*keys, target.name])
    try:
        fs, root = prediction_log.filesystem(url)
        if not fs.exists(root):
            return empty
        single = fs.isfile(root)
        if single and not root.endswith(LABEL_FILES):
            raise UserError(f"{url}: feedback is a .csv or .parquet file, or a folder of them")
        paths = [root] if single else sorted(fs.find(root))
        # Read as read_table reads: a text target stays text ("01" is not 1, "NA" is a value).
        text = {target.name: "string"} if target.kind in TEXT_KINDS else {}
        options = {"dtype": {"request_id": str, **text}, "keep_default_na": False}
        frames = []
        for path in paths:
            if not path.endswith(LABEL_FILES):
                continue
            try:
                with fs.open(path, "rb") as source:
                    if path.endswith(".parquet"):
                        frame = pd.read_parquet(source)
                    else:
                        frame = pd.read_csv(source, na_values=[""], **options)
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
                # Empty or broken CSV, not parquet: one line, naming the file.
                raise UserError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
            frames.append(_feedback_frame(frame, schema, path))
    except (ImportError, OSError) as error:
        raise UserError(f"cannot read the feedback at {url}: {error}") from None
    if not frames:
        return empty
    labels = pd.concat(frames, ignore_index=True)
    return labels.drop_duplicates(keys, keep="last").reset_index(drop=True)


def _feedback_frame(frame: pd.DataFrame, schema: Schema, path: str) -> pd.DataFrame:
    target = schema.target
    frame = frame.reset_index(drop=True)  # a parquet file may bring an index of its own
    missing = [name for name in ("request_id", target.name) if name not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: feedback needs the columns request_id and '{target.name}' (and record, "
            f"the record's position in the request, default 0); missing: {', '.join(missing)}"
        )
    if frame.empty:
        return pd.DataFrame(columns=[prediction_log.REQUEST_ID, prediction_log.RECORD, target.name])
    # A row without a label (not known yet) is skipped; the others are checked, numbered as
    # everywhere in this project (1: the file's first data row).
    known = frame[target.name].notna()
    record = pd.Series(
        pd.to_numeric(frame["record"], errors="coerce") if "record" in frame else 0,
        index=frame.index,
    )
    bad = known & (record.isna() | (record < 0) | (record % 1 != 0))
    if bad.any():
        rows = ", ".join(str(n + 1) for n in bad[bad].index[:5])
        raise UserError(f"{path}: 'record' must be a whole number from 0 (row(s) {rows})")
    optional = replace(target, nullable=True)
    labelled = validate(frame[[target.name]], schema, [optional], path)
    labelled.insert(0, prediction_log.RECORD, record.fillna(0).astype("int64"))
    labelled.insert(0, prediction_log.REQUEST_ID, frame["request_id"].astype(str).to_numpy())
    return labelled[known.to_numpy()].reset_index(drop=True)
