"""The tidy metrics table: one row per (run, split, evaluation setting, layer or step, metric).

Every Parquet file the pipeline writes uses SCHEMA. Its metadata holds the schema version and
the resolved configuration that produced the rows, so a table explains itself.
"""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .files import atomic_path

SCHEMA_VERSION = "4"

RUN_COLUMNS = [
    ("run_key", pa.string()),  # stable hash of the resolved run config
    ("setting", pa.string()),  # the same without mask and seed: rows that differ only in those are paired
    ("task", pa.string()),  # lr, nlr, mc, real
    ("model", pa.string()),  # softmax, lsa, lsa_constructed, stationary_point, or a baseline's name
    ("attention", pa.string()),  # dot, rbf, linear
    ("variant", pa.string()),  # released or standard softmax model; none for what is not one
    ("mask", pa.string()),  # prefix, causal, causal2
    ("n_layers", pa.int32()),
    ("width", pa.int32()),
    ("heads", pa.int32()),
    ("shared", pa.bool_()),  # one block shared by all layers (SL) or not (UL)
    ("l2", pa.bool_()),  # ICE outputs regularised towards 0
    ("permute", pa.bool_()),  # ICE order shuffled at every training step
    ("train_batches", pa.int32()),
    ("train_n_context", pa.int32()),  # ICEs visible in training (0 for what is not trained)
    ("seed", pa.int32()),
    ("eta", pa.float64()),  # step of the constructed LSA; null (NaN in pandas) for trained models
]
EVALUATION_COLUMNS = [
    ("split", pa.string()),  # train (training curve) or test
    ("test_set", pa.string()),  # synthetic, a real-data split (seen_classes, unseen_classes, iris, wine), or train
    ("n_context", pa.int32()),  # ICEs visible to the queries
    ("x_shift", pa.float64()),  # mu_x added to every x
    ("layer", pa.int32()),  # the layer read out (0 for a stationary point or a baseline)
    ("step", pa.int64()),  # training step the row describes
    ("metric", pa.string()),  # query_mse, ice_mse, query_error_pct, loss; probe_* for a layer's probe
    ("value", pa.float64()),  # +inf marks a diverged computation
]
NULLABLE = {"eta"}
SCHEMA = pa.schema(
    [pa.field(name, kind, nullable=name in NULLABLE) for name, kind in RUN_COLUMNS + EVALUATION_COLUMNS],
    metadata={"schema_version": SCHEMA_VERSION},
)
COLUMNS = SCHEMA.names
# What one row measures: a run's rows are unique on these, so tables read twice can be deduplicated.
ROW_KEY = ["run_key", "split", "test_set", "n_context", "x_shift", "layer", "step", "metric"]


def to_table(frame: pd.DataFrame, config: dict) -> pa.Table:
    """Check `frame` against SCHEMA and attach the schema version and `config` as metadata."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in COLUMNS]
    if missing or extra:
        raise ValueError(f"metrics frame does not match the schema: missing {missing}, unexpected {extra}")
    metadata = {"schema_version": SCHEMA_VERSION, "config": json.dumps(config, sort_keys=True)}
    table = pa.Table.from_pandas(frame[COLUMNS], preserve_index=False)
    return table.cast(SCHEMA).replace_schema_metadata(metadata)


def write(frame: pd.DataFrame, path, config: dict) -> None:
    """Write `frame` as a metrics Parquet file, atomically."""
    table = to_table(frame, config)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read(paths) -> pd.DataFrame:
    """Read and concatenate metrics files, checking each one's schema version."""
    paths = [paths] if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__") else list(paths)
    frames = []
    for path in paths:
        table = pq.read_table(path)
        version = (table.schema.metadata or {}).get(b"schema_version", b"?").decode()
        if version != SCHEMA_VERSION:
            raise ValueError(f"{path}: metrics schema version {version}, expected {SCHEMA_VERSION}")
        frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def config_of(path) -> dict:
    """The resolved configuration stored in a metrics file's metadata."""
    return json.loads(pq.read_schema(path).metadata[b"config"])
