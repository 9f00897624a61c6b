"""Dataset and model files prove on loading that they hold what was written.

- A file truncated or altered after it was written fails to load, with a message that names it, says
  what is wrong and how to rebuild it; it never loads as changed numbers.
- A file that this pipeline did not write is refused as such.
- The same content gives the same bytes, so a rebuilt file is identical to the one it replaces.
"""

import re
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from icl import checked, config, data, evaluation, runs, store, training


def spec(**overrides):
    cfg = config.validate({})
    base = {**cfg["data"], **cfg["model"], **cfg["train"], "seed": 0}
    base.update(
        x_dim=3, n_context=6, n_queries=2, train_batches=2, batch_size=4, test_sequences=4,
        n_layers=1, width=8, heads=2, ffn_width=16, steps=2,
    )
    return base | overrides


EXECUTION = dict(group_size=8, memory_budget_gb=1, device="cpu", compile="off", cpu_kernels="auto", threads=1, checkpoint_every=1000, log_every=1)


def truncate(path):
    path.chmod(0o644)  # stored models are read-only; damage comes from outside the pipeline
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def flip_16_bytes_in_the_middle(path):
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    path.write_bytes(bytes(raw))


DAMAGES = {"truncated": truncate, "checksum mismatch": flip_16_bytes_in_the_middle}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained run and its test file, to be copied and damaged."""
    root = tmp_path_factory.mktemp("trained")
    s = spec()
    run = runs.Run.of(s, root=root)
    data.save(data.training_set(s), run.train_data)
    data.save(data.test_sets(s, [0.0]), run.test_data([0.0]))
    training.train_group([run], EXECUTION, progress=False)
    return run, run.test_data([0.0])


def copy_of(run: runs.Run, root) -> runs.Run:
    """The run and its datasets under another root."""
    shutil.copytree(run.root, root)
    return runs.Run(spec=run.spec, key=run.key, root=root)


@pytest.mark.parametrize("problem", DAMAGES)
def test_a_damaged_dataset_file_fails_naming_it_and_how_to_rebuild_it(tmp_path, trained, problem):
    _, test_data = trained
    path = tmp_path / "results" / "data" / "lr" / "test-0.pt"
    path.parent.mkdir(parents=True)
    shutil.copy(test_data, path)
    data.load(path)  # intact: it loads
    DAMAGES[problem](path)
    with pytest.raises(checked.DamagedFileError) as error:
        data.load(path)
    message = str(error.value)
    assert str(path) in message
    assert problem in message
    assert "delete it and rerun the same snakemake command" in message


@pytest.mark.parametrize("problem", DAMAGES)
def test_a_damaged_model_file_fails_evaluation_naming_it_and_how_to_retrain_it(tmp_path, trained, problem, monkeypatch):
    original, test_data = trained
    run = copy_of(original, tmp_path / "run")
    evaluation.evaluate_group([run], [0.0], EXECUTION)  # intact: it evaluates
    model = run.directory / "model.pt"
    DAMAGES[problem](model)
    monkeypatch.setenv(store.FORCE_VARIABLE, "evaluate")  # evaluated already: only a forced evaluation reads it again
    with pytest.raises(checked.DamagedFileError) as error:
        evaluation.evaluate_group([run], [0.0], EXECUTION)
    message = str(error.value)
    assert str(model) in message
    assert problem in message
    assert "--forcerun" in message and f"grep -l {run.key} results/groups/*/trained.json" in message


def test_a_file_written_by_plain_torch_save_is_refused_as_not_ours(tmp_path):
    path = tmp_path / "train-b2.pt"
    torch.save(data.training_set(spec()), path)
    with pytest.raises(checked.DamagedFileError, match="not a file of this pipeline") as error:
        data.load(path)
    assert str(path) in str(error.value)


@settings(max_examples=60, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True), change=st.integers(1, 255), cut=st.floats(0, 1, exclude_max=True))
def test_any_changed_byte_or_truncation_is_caught(tmp_path_factory, where, change, cut):
    path = tmp_path_factory.mktemp("any") / "file.pt"
    checked.save({"x": torch.arange(64.0), "spec": {"task": "lr"}}, path)
    raw = path.read_bytes()
    changed = bytearray(raw)
    changed[int(where * len(raw))] ^= change
    for damaged in (bytes(changed), raw[: int(cut * len(raw))]):
        path.write_bytes(damaged)
        with pytest.raises(checked.DamagedFileError, match=re.escape(str(path))):
            checked.load(path, remedy="")


def test_the_same_content_gives_the_same_bytes(tmp_path):
    first, again = tmp_path / "first.pt", tmp_path / "again" / "train-b2.pt"
    data.save(data.training_set(spec()), first)
    data.save(data.training_set(spec()), again)
    assert first.read_bytes() == again.read_bytes()
