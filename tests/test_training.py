"""Training many models as one batched computation, and the trainer's guarantees.

- K models trained together follow the trajectories they follow alone: the group shares only the
  shape and the schedule, never data, mask, regulariser or batch order.
- A run killed at any time resumes from its last checkpoint to the very weights of an
  uninterrupted run, and never leaves half-written outputs.
- A diverged run stops with an error that names it, and no checkpoint holds non-finite numbers; a
  checkpoint that is non-finite or damaged is refused, naming its run, and training starts over.
- The schedule is the paper's: linear warm-up over the first 20% of the steps, then cosine decay.
- The released variant trains as the released code does: its even_loss, one ICE order per step
  shared by the batch, and a warm-up from 0.
- A prefix and a causal run of one setting and seed start from the same weights and batches.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from icl import checked, config, data, plan, runs, training

REPO = Path(__file__).resolve().parents[1]




def spec(**overrides):
    cfg = config.validate({})
    base = {**cfg["data"], **cfg["model"], **cfg["train"], "seed": 0}
    base.update(
        x_dim=3, n_context=6, n_queries=2, train_batches=4, batch_size=4,
        n_layers=2, width=8, heads=2, ffn_width=16, steps=20, learning_rate=1e-2,
    )
    base.update(overrides)
    return base


def member(root: Path, s: dict, name: str = "results") -> runs.Run:
    """A run with its files under root/name, its training set saved there."""
    run = runs.Run.of(s, root=root / name)
    if not run.train_data.exists():
        data.save(data.training_set(s), run.train_data)
    return run


def execution(**overrides):
    return dict(
        group_size=8, memory_budget_gb=1, device="cpu", compile="off", cpu_kernels="auto", threads=1, checkpoint_every=1000,
        log_every=5,
    ) | overrides


def saved_weights(m: runs.Run) -> dict:
    return training.load_model(m.directory / "model.pt")["model"]


def resume_state(m: runs.Run) -> dict:
    return checked.load(m.directory / "resume.pt", remedy="", weights_only=False)


def curve(m: runs.Run) -> pd.DataFrame:
    return pd.read_parquet(m.directory / "curve.parquet").sort_values(["step", "metric"]).reset_index(drop=True)


def initial_weights(m: runs.Run, s: dict) -> dict:
    from icl import models

    model = models.build(1, models.ModelConfig.from_spec(s))
    models.initialise(model, [m.seed])
    return {name: p.detach() for name, p in model.named_parameters()}


# --- K batched = K sequential ---


@pytest.mark.parametrize("l2", [True, False], ids=["ice-term", "queries-only"])
@pytest.mark.parametrize("variant", ["released", "standard"])
def test_a_group_trains_each_model_as_if_it_were_alone(tmp_path, variant, l2):
    specs = [
        spec(task="lr", mask="prefix", seed=0, l2=l2, variant=variant),
        spec(task="nlr", mask="causal", seed=1, permute=True, l2=l2, l2_weight=0.5, variant=variant),
        spec(task="lr", mask="causal", seed=2, train_batches=2, l2=l2, variant=variant),  # a smaller training set, padded in the group
    ]
    group = [member(tmp_path, s, "group") for s in specs]
    trainers = training.train_group(group, execution(), progress=False)
    assert len(trainers) == 1 and trainers[0].step == 20
    for s in specs:
        alone = member(tmp_path, s, "alone")
        training.train_group([alone], execution(), progress=False)
        together = next(m for m in group if m.key == alone.key)

        weights, reference = saved_weights(together), saved_weights(alone)
        assert weights.keys() == reference.keys()
        start = initial_weights(alone, s)
        moved = max((reference[name][0] - start[name][0]).abs().max().item() for name in reference)
        assert moved > 1e-2, "training must move the weights for this comparison to mean anything"
        for name in reference:
            assert weights[name].shape[0] == 1
            torch.testing.assert_close(weights[name], reference[name], rtol=0, atol=1e-5, msg=f"{s['task']} {s['mask']}: {name}")

        got, expected = curve(together), curve(alone)
        assert list(got["step"].unique()) == [5, 10, 15, 20]
        assert set(got["metric"]) == {"loss", "query_mse"}
        pd.testing.assert_frame_equal(got.drop(columns="value"), expected.drop(columns="value"))
        assert got["value"].tolist() == pytest.approx(expected["value"].tolist(), rel=1e-5, abs=1e-6)
        assert (together.directory / "train.log").read_text().startswith(f"run {together.key}\n")
        assert not (together.directory / "resume.pt").exists()

    # the three members are three different models
    read_out = "probes.1.weight" if variant == "released" else "head.weight"  # the last layer's probe is the released read-out
    finals = [saved_weights(m)[read_out] for m in group]
    assert (finals[0] - finals[1]).abs().max() > 1e-4 and (finals[0] - finals[2]).abs().max() > 1e-4


def test_a_group_that_differs_in_shape_is_rejected(tmp_path):
    members = [member(tmp_path, spec(seed=0)), member(tmp_path, spec(seed=1, width=16))]
    with pytest.raises(ValueError, match="width"):
        training.GroupTrainer(members, execution())
    members = [member(tmp_path, spec(seed=0)), member(tmp_path, spec(seed=1, learning_rate=1e-3))]
    with pytest.raises(ValueError, match="learning_rate"):
        training.GroupTrainer(members, execution())
    # the ICE term decides which positions the last layer computes
    members = [member(tmp_path, spec(seed=0, l2=True)), member(tmp_path, spec(seed=1, l2=False))]
    with pytest.raises(ValueError, match="ICE term"):
        training.GroupTrainer(members, execution())


def losses_on_one_batch(tmp_path, specs):
    """Each spec's (loss, query MSE, whole-prompt output and probes) on the first spec's first batch,
    every model with the first one's initial weights; the specs train in separate groups where the
    ICE term differs."""
    trainers = [training.GroupTrainer([member(tmp_path, s, f"m{i}")], execution()) for i, s in enumerate(specs)]
    x, y = trainers[0].batch(0)
    results = []
    with torch.no_grad():
        for trainer in trainers:
            trainer.model.load_state_dict(trainers[0].model.state_dict())
            loss, query = trainer._loss(x, y)
            output, probes = trainer.model(training.tokens(x, y, trainer.n_context), trainer.mask)
            results.append((loss[0], query[0], output[0], probes[:, 0]))
    return results, y[0]


def test_the_l2_regulariser_adds_the_mean_squared_ice_output(tmp_path):
    """standard: l2 runs add l2_weight * mean_j ||f(ICE_j)||^2 to the query loss; other runs do not."""
    plain, regularised = spec(variant="standard"), spec(variant="standard", l2=True, l2_weight=0.5)
    ((loss, query, _, _), (l2_loss, l2_query, output, _)), _ = losses_on_one_batch(tmp_path, [plain, regularised])
    torch.testing.assert_close(query, l2_query)
    ice_mse = (output[:, :6] ** 2).sum(-1).mean()
    assert ice_mse > 0
    torch.testing.assert_close(l2_loss - loss, 0.5 * ice_mse, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("l2_weight", [1.0, 0.5])
def test_the_released_l2_regulariser_is_the_even_loss(tmp_path, l2_weight):
    """released: with L2 the loss is the mean over all T positions of the squared error, the target 0 at
    ICE positions (even_loss), so at weight 1 the ICE term weighs n_context / n_queries times the query
    term, and each ICE position weighs l2_weight otherwise; without L2 it is the query MSE alone. The
    probes of layers 1..L-1 add their query MSE; the last layer's probe is the prediction itself."""
    n, q = 6, 2
    specs = [spec(n_layers=1, l2=False), spec(n_layers=1, l2=True, l2_weight=l2_weight)]
    ((loss, query, output, _), (l2_loss, l2_query, _, _)), y = losses_on_one_batch(tmp_path, specs)
    target = y.clone()
    target[:, :n] = 0
    errors = ((output - target) ** 2).sum(-1)  # [B, T]: both models have the same weights, so the same output
    by_hand_query = errors[:, n:].mean()
    weights = torch.tensor([l2_weight] * n + [1.0] * q, dtype=errors.dtype)
    by_hand_even = (errors * weights).sum(-1).mean() / weights.sum()
    torch.testing.assert_close(query, by_hand_query)
    torch.testing.assert_close(l2_query, by_hand_query)
    torch.testing.assert_close(loss, by_hand_query)
    torch.testing.assert_close(l2_loss, by_hand_even)
    if l2_weight == 1.0:
        torch.testing.assert_close(l2_loss, errors.mean())  # the released even_loss: the plain mean over positions
        ice = errors[:, :n].mean()
        torch.testing.assert_close(l2_loss, (n * ice + q * by_hand_query) / (n + q))

    deeper = training.GroupTrainer([member(tmp_path, spec(n_layers=3, l2=True), "deep")], execution())
    x, y = deeper.batch(0)
    with torch.no_grad():
        loss, _ = deeper._loss(x, y)
        output, probes = deeper.model(training.tokens(x, y, n), deeper.mask)
    target = y.clone()
    target[:, :, :n] = 0
    even = ((output - target) ** 2).sum(-1).mean()
    earlier_probes = sum(((probes[layer, 0, :, n:] - y[0, :, n:]) ** 2).sum(-1).mean() for layer in range(2))
    torch.testing.assert_close(loss[0], even + earlier_probes)


def test_tokens_hide_the_query_labels():
    x = torch.randn(2, 5, 3)
    y = torch.randn(2, 5, 1)
    tokens = training.tokens(x, y, n_context=3)
    assert tokens.shape == (2, 5, 4)
    torch.testing.assert_close(tokens[:, :3, :1], y[:, :3])  # ICE: [y; x]
    assert (tokens[:, 3:, :1] == 0).all()  # query: [0; x]
    torch.testing.assert_close(tokens[..., 1:], x)
    assert (y[:, 3:] != 0).all()  # and the caller's labels are untouched


# --- a killed run resumes to the same weights ---


def _command(members, exe):
    """The train command of a pipeline job; it runs in the folder that holds the members' results/."""
    specs = json.dumps([m.spec for m in members])
    return [sys.executable, "-m", "icl", "train", "--quiet", "--runs", specs, "--manifest", "results/groups/g/trained.json", "--execution", json.dumps(exe)]


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "workflow"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("ICL_FAULT_DRILL", None)
    return env


def _temporary_files(directory: Path):
    return sorted(p.name for p in directory.rglob(".*.tmp*"))


def _kill_after_a_checkpoint(members, exe):
    """Start training, SIGKILL it once every member has a resume checkpoint; None if it finished first."""
    process = subprocess.Popen(_command(members, exe), cwd=members[0].root.parent, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if all((m.directory / "resume.pt").exists() for m in members):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        _, stderr = process.communicate()
    if process.returncode != -signal.SIGKILL:
        assert process.returncode == 0, f"training failed before the kill:\n{stderr.decode()[-2000:]}"
        return None
    return process.returncode


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    specs = [spec(mask="prefix", seed=0, l2=True), spec(mask="causal", seed=1, permute=True, l2=True, l2_weight=0.5)]
    exe = execution(checkpoint_every=50, log_every=10)
    for attempt, steps in enumerate((300, 1200, 4800)):
        root = tmp_path / f"attempt{attempt}"
        s_steps = [s | {"steps": steps} for s in specs]
        killed = [member(root / "killed", s) for s in s_steps]
        if _kill_after_a_checkpoint(killed, exe) is None:
            continue  # it finished before the kill: retry with a longer run
        resume_steps = {resume_state(m)["step"] for m in killed}
        if len(resume_steps) != 1 or _temporary_files(root):
            continue  # the kill landed inside a checkpoint write (rare): try again
        break
    else:
        pytest.fail("could not kill the training process mid-way in 3 attempts (it always finished or was killed mid-write)")
    (resumed_at,) = resume_steps
    assert 0 < resumed_at < steps and resumed_at % 50 == 0

    # killed mid-way: no outputs yet, not even partial ones, and no temporary files
    for m in killed:
        assert not (m.directory / "model.pt").exists()
        assert not (m.directory / "curve.parquet").exists()
        assert not (m.directory / "train.log").exists()
    assert _temporary_files(root) == []

    # the same command again: it resumes, then completes
    done = subprocess.run(_command(killed, exe), cwd=root / "killed", env=_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed 2 runs at step {resumed_at}" in done.stdout, done.stdout
    assert _temporary_files(root) == []

    uninterrupted = [member(root, s, "uninterrupted") for s in s_steps]
    training.train_group(uninterrupted, exe, progress=False)
    for a, b in zip(killed, uninterrupted):
        assert not (a.directory / "resume.pt").exists()
        weights, reference = saved_weights(a), saved_weights(b)
        assert weights.keys() == reference.keys()
        for name in reference:
            torch.testing.assert_close(weights[name], reference[name], rtol=0, atol=1e-6, msg=name)
        got, expected = curve(a), curve(b)
        assert got["step"].max() == steps and got["step"].min() == 10  # the steps before the kill are kept
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-6)


# --- divergence ---


def test_a_huge_learning_rate_raises_divergence_naming_the_run(tmp_path):
    m = member(tmp_path, spec(model="lsa", learning_rate=1e6, steps=50))
    with pytest.raises(training.DivergenceError) as error:
        training.train_group([m], execution(log_every=1), progress=False)
    assert str(m.directory) in str(error.value)
    assert not (m.directory / "model.pt").exists()


def test_infinite_data_raises_divergence_naming_only_the_bad_run(tmp_path):
    good = member(tmp_path, spec(seed=0))
    s = spec(seed=1)
    bad = member(tmp_path, s)
    corrupted = data.load(bad.train_data)
    corrupted["x"][:, 2, 0] = math.inf
    data.save(corrupted, bad.train_data)
    with pytest.raises(training.DivergenceError) as error:
        training.train_group([good, bad], execution(log_every=1), progress=False)
    message = str(error.value)
    assert str(bad.directory) in message
    assert str(good.directory) not in message


def test_a_diverging_run_never_writes_a_non_finite_checkpoint(tmp_path):
    """Checkpoints every step, loss checked every 5: the weights blow up between two loss checks."""
    runs = [member(tmp_path, spec(model="lsa", learning_rate=1e6, steps=50, seed=seed)) for seed in (0, 1)]
    with pytest.raises(training.DivergenceError) as error:
        training.train_group(runs, execution(checkpoint_every=1, log_every=5), progress=False)
    message = str(error.value)
    assert "weights or optimiser state are not finite" in message and "no resume.pt written" in message
    assert int(re.search(r"at step (\d+)", message)[1]) < 5  # caught at a checkpoint, before the loss check
    for m in runs:
        assert str(m.directory) in message
        assert not (m.directory / "model.pt").exists()
        if (m.directory / "resume.pt").exists():
            assert training.checkpoint_is_finite(resume_state(m))


def test_final_weights_that_are_not_finite_are_not_saved_and_only_their_run_is_named(tmp_path):
    good, bad = [member(tmp_path, spec(seed=seed, steps=5)) for seed in (0, 1)]
    trainer = training.GroupTrainer([good, bad], execution())
    trainer.train(progress=False)
    with torch.no_grad():
        next(trainer.model.parameters())[1].view(-1)[0] = math.nan  # one weight of the second model
    with pytest.raises(training.DivergenceError) as error:
        trainer.save_outputs()
    assert str(bad.directory) in str(error.value) and str(good.directory) not in str(error.value)
    assert not (good.directory / "model.pt").exists() and not (bad.directory / "model.pt").exists()


def poison_weights(path):
    state = checked.load(path, remedy="", weights_only=False)
    next(iter(state["model"].values()))[0, 0] = math.nan
    checked.save(state, path)


def poison_moments(path):
    state = checked.load(path, remedy="", weights_only=False)
    moments = next(v for v in state["optimizer"].values() if v)
    moments["exp_avg_sq"].view(-1)[0] = math.inf
    checked.save(state, path)


def truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    "damage, reason",
    [(poison_weights, "non-finite"), (poison_moments, "non-finite"), (truncate, "truncated")],
)
def test_a_poisoned_or_damaged_checkpoint_is_refused_naming_its_run_and_training_starts_over(tmp_path, capsys, damage, reason):
    specs = [spec(seed=0), spec(seed=1, mask="causal")]
    runs = [member(tmp_path, s, "interrupted") for s in specs]
    early = training.GroupTrainer(runs, execution())
    for _ in range(3):
        early.train_step()
    early.save_resume()
    bad = runs[1]
    damage(bad.directory / "resume.pt")

    training.train_group(runs, execution(), progress=False)
    out = capsys.readouterr().out
    refusals = [line for line in out.splitlines() if line.startswith("refusing")]
    assert len(refusals) == 1 and str(bad.directory) in refusals[0] and reason in refusals[0]
    assert "runs from step 0" in out and "resumed 2 runs" not in out

    fresh = [member(tmp_path, s, "fresh") for s in specs]
    training.train_group(fresh, execution(), progress=False)
    for a, b in zip(runs, fresh):
        for name, value in saved_weights(b).items():
            torch.testing.assert_close(saved_weights(a)[name], value, rtol=0, atol=0, msg=name)
        assert not (a.directory / "resume.pt").exists()


# --- the schedule ---


# Training steps of 8 models of the default size, and the page faults per step after a warm-up.
FAULTS_PER_STEP = """
import resource, sys, torch
from icl import masks, models, runs
from icl.shapes import ModelConfig
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    runs.keep_freed_memory()
config = ModelConfig(n_layers=3, width=32, heads=2, ffn_width=64, attention="rbf", input_dim=6, n_positions=15)
model = models.build(8, config)
models.initialise(model, list(range(8)))
optimizer = torch.optim.AdamW(model.parameters())
mask, tokens = masks.visibility("prefix", 10, 5).expand(8, -1, -1), torch.randn(8, 32, 15, 6)
def step():
    output, probes = model(tokens, mask)
    optimizer.zero_grad()
    (output.square().mean() + probes.square().mean()).backward()
    optimizer.step()
for _ in range(20):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.skipif(not runs.on_glibc(), reason="a glibc setting")
def test_a_job_keeps_the_memory_of_freed_tensors_so_its_steps_map_no_fresh_pages():
    """By default glibc hands the memory of a step's freed tensors back to the system and maps it afresh
    in the next step, a page fault per page; set_cpu_execution keeps it in the process."""
    faults = {
        mode: float(subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], env=_environment(), capture_output=True, text=True, check=True).stdout)
        for mode in ("keep", "default")
    }
    assert faults["default"] > 100 and faults["keep"] < faults["default"] / 5, faults  # the system may still reclaim a few


@pytest.mark.parametrize("total", [10, 100, 1000])
def test_learning_rate_warms_up_linearly_then_decays_by_a_cosine(total):
    peak = 3e-4
    lr = [training.learning_rate(step, total, peak, 0.2) for step in range(total)]
    warmup = int(0.2 * total)
    assert lr[warmup - 1] == pytest.approx(peak) and max(lr) == pytest.approx(peak)
    # linear warm-up: equal increments from peak / warmup up to the peak
    increments = [b - a for a, b in zip(lr[:warmup], lr[1:warmup])]
    assert lr[0] == pytest.approx(peak / warmup)
    assert all(inc == pytest.approx(peak / warmup) for inc in increments)
    # then monotone decay to about zero, through half the peak half way through the decay
    decay = lr[warmup:]
    assert all(b <= a for a, b in zip(decay, decay[1:]))
    assert decay[0] == pytest.approx(peak)
    # the last step is one step short of the end of the cosine, where it reaches 0
    assert lr[-1] == pytest.approx(peak * 0.5 * (1 - math.cos(math.pi / (total - warmup))))
    assert lr[-1] < 0.05 * peak and (total < 100 or lr[-1] < 1e-3 * peak)
    assert training.learning_rate(total, total, peak, 0.2) == pytest.approx(0.0, abs=1e-15)
    middle = warmup + (total - warmup) // 2
    assert lr[middle] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * (middle - warmup) / (total - warmup))))
    if (total - warmup) % 2 == 0:
        assert lr[middle] == pytest.approx(peak / 2)


@pytest.mark.parametrize("total", [10, 100, 1000])
def test_released_learning_rate_warms_up_from_zero(total):
    """The released schedule: lr rises linearly from 0 at the first step to the peak at the end of the
    warm-up, then decays by the same cosine."""
    peak = 3e-4
    warmup = int(0.2 * total)
    lr = [training.learning_rate(step, total, peak, 0.2, from_zero=True) for step in range(total)]
    assert lr[0] == 0.0
    assert all(b - a == pytest.approx(peak / warmup) for a, b in zip(lr[: warmup + 1], lr[1 : warmup + 1]))
    assert lr[warmup] == pytest.approx(peak) and max(lr) == pytest.approx(peak)
    standard = [training.learning_rate(step, total, peak, 0.2) for step in range(total)]
    assert lr[warmup:] == standard[warmup:]


def test_learning_rate_without_warmup_starts_at_the_peak():
    assert training.learning_rate(0, 100, 1.0, 0.0) == pytest.approx(1.0)
    assert training.learning_rate(50, 100, 1.0, 0.0) == pytest.approx(0.5)


@pytest.mark.parametrize("variant", ["released", "standard"])
def test_training_follows_the_schedule(tmp_path, variant):
    m = member(tmp_path, spec(steps=10, variant=variant))
    trainer = training.GroupTrainer([m], execution())
    seen = []
    step = trainer.optimizer.step

    def record():
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return step()

    trainer.optimizer.step = record
    trainer.train(progress=False)
    from_zero = variant == "released"
    assert seen == pytest.approx([training.learning_rate(i, 10, 1e-2, 0.2, from_zero=from_zero) for i in range(10)])
    assert (seen[0] == 0.0) == from_zero


# --- batch order ---


def test_each_epoch_is_a_permutation_of_the_models_own_training_set():
    seeds, sizes, batch = [7, 8], [24, 12], 4
    order = training.BatchOrder(seeds, sizes, batch)
    for k, size in enumerate(sizes):
        batches = size // batch
        for epoch in range(3):
            seen = torch.cat([order.indices(epoch * batches + i)[k] for i in range(batches)])
            assert sorted(seen.tolist()) == list(range(size)), (k, epoch)
    epochs = [torch.cat([order.indices(e * 6 + i)[0] for i in range(6)]) for e in range(2)]
    assert not torch.equal(epochs[0], epochs[1])  # a fresh order every epoch
    assert not torch.equal(epochs[0], torch.arange(24))


def test_batch_order_depends_on_the_models_seed():
    a = training.BatchOrder([1, 2], [40, 40], 4)
    b = training.BatchOrder([1, 3], [40, 40], 4)
    first = torch.stack([a.indices(s) for s in range(10)])
    second = torch.stack([b.indices(s) for s in range(10)])
    assert torch.equal(first[:, 0], second[:, 0])  # model 0 has the same seed: the same order
    assert not torch.equal(first[:, 1], second[:, 1])
    assert not torch.equal(first[:, 0], first[:, 1])


def test_batch_indices_are_a_pure_function_of_the_step():
    sequential = training.BatchOrder([5, 6], [16, 32], 4)
    expected = {step: sequential.indices(step) for step in range(40)}
    for step in (33, 2, 17, 39, 0, 17, 8):  # out of order, repeated, on fresh and reused orders
        torch.testing.assert_close(training.BatchOrder([5, 6], [16, 32], 4).indices(step), expected[step], rtol=0, atol=0)
        torch.testing.assert_close(sequential.indices(step), expected[step], rtol=0, atol=0)


# --- ICE permutations ---


def test_ice_permutations_permute_only_where_asked():
    orders = training.ice_permutations([1, 2, 3], step=4, batch_size=5, n_context=7, permute=[False, True, True])
    assert orders.shape == (3, 5, 7)
    assert torch.equal(orders[0], torch.arange(7).expand(5, 7))
    for k in (1, 2):
        assert torch.equal(orders[k].sort(-1).values, torch.arange(7).expand(5, 7))
        assert not torch.equal(orders[k], torch.arange(7).expand(5, 7))
    assert not torch.equal(orders[1], orders[2])
    assert not torch.equal(orders[1, 0], orders[1, 1])  # one order per sequence


def test_ice_permutations_are_deterministic_in_seed_and_step():
    again = training.ice_permutations([1, 2], 4, 5, 7, [True, True])
    torch.testing.assert_close(again, training.ice_permutations([1, 2], 4, 5, 7, [True, True]), rtol=0, atol=0)
    assert not torch.equal(again, training.ice_permutations([1, 2], 5, 5, 7, [True, True]))
    assert not torch.equal(again[0], training.ice_permutations([9, 2], 4, 5, 7, [True, True])[0])


def test_ice_permutations_per_batch_share_one_order_per_step():
    """The released code's permutation: one order per step for the whole batch, a new one every step."""
    orders = [training.ice_permutations([1, 2], step, 5, 7, [True, True], per_batch=True) for step in range(4)]
    for order in orders:
        assert torch.equal(order.sort(-1).values, torch.arange(7).expand(2, 5, 7))
        assert torch.equal(order, order[:, :1].expand_as(order))  # every sequence of a model: the same order
        assert not torch.equal(order[0], order[1])  # models draw their own
    assert len({tuple(order[0, 0].tolist()) for order in orders}) == 4


@pytest.mark.parametrize("variant", ["released", "standard"])
def test_permuted_batches_keep_each_label_with_its_x(tmp_path, variant):
    """Shuffling the ICE order moves (x, y) pairs together and leaves the queries in place; the released
    variant moves every sequence of the batch by the same order, the standard one each by its own."""
    trainer = training.GroupTrainer([member(tmp_path, spec(seed=0, permute=True, variant=variant))], execution())
    x, y = trainer.batch(3)
    rows = trainer.order.indices(3)[0]
    plain_x, plain_y = trainer.x[0, rows], trainer.y[0, rows]
    assert not torch.equal(x[0, :, :6], plain_x[:, :6])
    torch.testing.assert_close(x[0, :, 6:], plain_x[:, 6:], rtol=0, atol=0)
    torch.testing.assert_close(y[0, :, 6:], plain_y[:, 6:], rtol=0, atol=0)
    orders = []
    for b in range(x.shape[1]):
        # where each permuted ICE came from; its label came from the same place
        order = [int((plain_x[b, :6] == ice).all(-1).nonzero()) for ice in x[0, b, :6]]
        torch.testing.assert_close(y[0, b, :6], plain_y[b, order], rtol=0, atol=0)
        orders.append(order)
    assert sorted(orders[0]) == list(range(6))
    assert (len({tuple(o) for o in orders}) == 1) == (variant == "released")


# --- paired initialisation ---


@pytest.mark.parametrize("variant", ["released", "standard"])
def test_prefix_and_causal_runs_of_one_setting_and_seed_start_from_the_same_weights(tmp_path, variant):
    """The masks' comparison is paired in everything but the mask: initial weights and batches come from
    the run's config without its mask; another seed (or setting) starts elsewhere."""
    specs = [spec(mask="prefix", seed=0, variant=variant), spec(mask="causal", seed=0, variant=variant),
             spec(mask="prefix", seed=1, variant=variant), spec(mask="prefix", seed=0, permute=True, variant=variant)]
    members = [member(tmp_path, s) for s in specs]
    assert len({m.key for m in members}) == 4
    trainer = training.GroupTrainer(members, execution())
    x, _ = trainer.batch(0)
    for name, parameter in trainer.model.named_parameters():
        torch.testing.assert_close(parameter[1], parameter[0], rtol=0, atol=0, msg=name)
    assert torch.equal(x[1], x[0])
    for other in (2, 3):
        assert any(not torch.equal(p[other], p[0]) for p in trainer.model.parameters())
    assert not torch.equal(x[2], x[0])


def test_a_group_over_the_memory_budget_trains_in_passes_with_the_same_results(tmp_path):
    specs = [spec(task="lr", mask=mask, seed=seed) for seed in (0, 1) for mask in ("prefix", "causal")]
    one_pass = [member(tmp_path, s, "one") for s in specs]
    assert len(training.train_group(one_pass, execution(), progress=False)) == 1
    per_model = training.models_per_pass(one_pass, 1.0) ** -1  # budget (GB) that fits exactly one model
    split = [member(tmp_path, s, "split") for s in specs]
    trainers = training.train_group(split, execution(memory_budget_gb=1.5 * per_model), progress=False)
    assert [len(t.members) for t in trainers] == [1, 1, 1, 1]
    for a, b in zip(one_pass, split):
        for name, value in saved_weights(a).items():
            torch.testing.assert_close(saved_weights(b)[name], value, atol=1e-5, rtol=0)


# With dot logits a key bias only shifts a softmax row, so its gradient is rounding noise that Adam
# scales up, and compiled and eager noise differ: the released model is compared with its rbf logit.
@pytest.mark.parametrize("variant, attention", [("released", "rbf"), ("standard", "dot")])
def test_compiled_step_trains_like_the_eager_one(tmp_path, variant, attention):
    s = spec(task="lr", mask="causal", seed=0, steps=6, variant=variant, attention=attention)
    eager, compiled = member(tmp_path, s, "eager"), member(tmp_path, s, "compiled")
    # A compiled step runs the PyTorch code, so the eager one does too (the CPU kernels are compared
    # with it in tests/test_cpu_kernels.py).
    training.train_group([eager], execution(cpu_kernels="off"), progress=False)
    training.train_group([compiled], execution(compile="default"), progress=False)
    for name, value in saved_weights(eager).items():
        torch.testing.assert_close(saved_weights(compiled)[name], value, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_keeps_fp32_weights_and_stays_close(tmp_path):
    full = member(tmp_path, spec(task="lr", seed=0, steps=10), "fp32")
    half = member(tmp_path, spec(task="lr", seed=0, steps=10, precision="bf16"), "bf16")
    training.train_group([full], execution(), progress=False)
    training.train_group([half], execution(), progress=False)
    assert all(w.dtype == torch.float32 for w in saved_weights(half).values())
    assert any(not torch.equal(saved_weights(half)[n], w) for n, w in saved_weights(full).items())
    # One forward pass of the same weights: bf16 matmuls change the loss by far less than training does.
    trainer = training.GroupTrainer([full], execution())
    batch = trainer.batch(0)
    exact, _ = trainer._loss(*batch)
    trainer.spec = trainer.spec | {"precision": "bf16"}
    approximate, _ = trainer._loss(*batch)
    assert not torch.equal(exact, approximate)
    torch.testing.assert_close(approximate, exact, rtol=0.05, atol=0)


def test_an_overflowing_prediction_is_recorded_as_diverged(tmp_path):
    from icl import evaluation, metrics

    s = spec(model="lsa", task="lr", seed=0, steps=2, test_sequences=4)
    m = member(tmp_path, s)
    training.train_group([m], execution(), progress=False)
    test = data.test_sets(s, [0.0])
    test["sets"][0]["x"] *= 1e30  # a cubic model overflows float32 here
    data.save(test, m.test_data([0.0]))
    evaluation.evaluate_group([m], [0.0], execution())
    values = metrics.read([m.metrics([0.0])])["value"]
    assert values.notna().all() and (values == float("inf")).any()


# --- training with fewer ICEs than the prompt holds ---


@pytest.mark.parametrize("mask", ["prefix", "causal"])
def test_a_run_trained_on_the_first_ices_never_learns_from_the_others(tmp_path, mask):
    """train_n_context = 3 of 6: changing ICEs 4-6 of every training prompt leaves the trained weights as they are."""
    s = spec(mask=mask, train_n_context=3, steps=6, l2=False)
    original = member(tmp_path, s)
    training.train_group([original], execution(), progress=False)
    changed_data = data.training_set(s)
    changed_data["x"][:, 3:6] += 1.0
    changed_data["y"][:, 3:6] -= 2.0
    changed = runs.Run.of(s, root=tmp_path / "changed")
    data.save(changed_data, changed.train_data)
    training.train_group([changed], execution(), progress=False)
    for name, weight in saved_weights(original).items():
        torch.testing.assert_close(saved_weights(changed)[name], weight, rtol=0, atol=0, msg=name)
    # ... while a run that sees every ICE does learn from them
    full = spec(mask=mask, steps=6, l2=False)
    seen = member(tmp_path, full, "full")
    training.train_group([seen], execution(), progress=False)
    unseen = runs.Run.of(full, root=tmp_path / "full_changed")
    data.save(changed_data, unseen.train_data)
    training.train_group([unseen], execution(), progress=False)
    assert any(not torch.equal(saved_weights(unseen)[n], w) for n, w in saved_weights(seen).items())


def test_train_n_context_is_checked_against_the_prompt():
    bad = config.validate({"data": {"n_context": 10}, "sweeps": {"s": {"grid": {"train_n_context": [12]}}}})
    with pytest.raises(config.ConfigError, match="train_n_context = 12 exceeds n_context = 10"):
        plan.make_plan(bad)
