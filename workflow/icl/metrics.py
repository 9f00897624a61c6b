"""The tidy metrics table: one row per (run, split, evaluation setting, layer or step, metric).

Every Parquet file the pipeline writes uses SCHEMA, except the language-model study's (icl.lm), which
uses LM_SCHEMA: its runs have an objective and its prompts a number of examples k and an example length. Its metadata holds the schema version and
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

LM_SCHEMA_VERSION = "lm-1"
LM_SCHEMA = pa.schema(
    [
        ("run_key", pa.string()),  # group/seed, or bayes and chance for the references
        ("objective", pa.string()),  # causal, prefix, prefix_full; bayes, chance
        ("evaluation_mask", pa.string()),  # causal or prefix (the whole prompt as prefix); none for references and curves
        ("n_layers", pa.int32()),
        ("width", pa.int32()),
        ("heads", pa.int32()),
        ("parameters", pa.int64()),  # of one model; 0 for references
        ("seed", pa.int32()),
        ("split", pa.string()),  # in_distribution, out_of_distribution (held-out concepts), or train (the training curve)
        ("k", pa.int32()),  # examples before the test example
        ("example_length", pa.int32()),  # L: L-1 tokens of x and the answer
        ("step", pa.int64()),
        ("metric", pa.string()),  # accuracy_pct, train_loss
        ("value", pa.float64()),
    ],
    metadata={"schema_version": LM_SCHEMA_VERSION},
)
SCHEMAS = {SCHEMA_VERSION: SCHEMA, LM_SCHEMA_VERSION: LM_SCHEMA}
# What one row measures: a run's rows are unique on these, so tables read twice can be deduplicated.
ROW_KEY = ["run_key", "split", "test_set", "n_context", "x_shift", "layer", "step", "metric"]


def to_table(frame: pd.DataFrame, config: dict, schema: pa.Schema = SCHEMA) -> pa.Table:
    """Check `frame` against `schema` and attach the schema version and `config` as metadata."""
    columns = schema.names
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise ValueError(f"metrics frame does not match the schema: missing {missing}, unexpected {extra}")
    metadata = {"schema_version": schema.metadata[b"schema_version"].decode(), "config": json.dumps(config, sort_keys=True)}
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    return table.cast(schema).replace_schema_metadata(metadata)


def write(frame: pd.DataFrame, path, config: dict, schema: pa.Schema = SCHEMA) -> None:
    """Write `frame` as a metrics Parquet file of `schema`, atomically."""
    table = to_table(frame, config, schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read(paths) -> pd.DataFrame:
    """Read and concatenate metrics files of one schema, checking each one's schema version."""
    paths = [paths] if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__") else list(paths)
    frames, versions = [], set()
    for path in paths:
        table = pq.read_table(path)
        version = (table.schema.metadata or {}).get(b"schema_version", b"?").decode()
        if version not in SCHEMAS:
            raise ValueError(f"{path}: metrics schema version {version}, expected one of {', '.join(SCHEMAS)}")
        versions.add(version)
        frames.append(table.to_pandas())
    if len(versions) > 1:
        raise ValueError(f"metrics files of different schemas ({', '.join(sorted(versions))}) cannot be read as one table")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def config_of(path) -> dict:
    """The resolved configuration stored in a metrics file's metadata."""
    return json.loads(pq.read_schema(path).metadata[b"config"])
