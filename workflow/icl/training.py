"""Train a group of K independent models as one batched computation.

Each model keeps its own initial weights, data, batch order, mask, regulariser and outputs; the
group shares only the shape and the optimiser schedule. One AdamW step updates all of them, and
since AdamW is elementwise and the loss is a sum of per-model losses, model k follows the same
trajectory as it would alone (up to float rounding; tests/test_training.py shows it).
"""

import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from . import checked, compiling, cpu_kernels, data, masks, metrics, models, runs, shapes, store
from .files import write_text
from .plan import group_signature
from .runs import Run, has_ice_term, resolve_device, set_cpu_execution, tokens


class DivergenceError(RuntimeError):
    """A run's loss, weights or optimiser state became NaN or infinite."""


def learning_rate(step: int, total: int, peak: float, warmup_fraction: float, from_zero: bool = False) -> float:
    """Linear warm-up over the first warmup_fraction of the steps, then cosine decay to zero.

    The warm-up rises to the peak from peak / warmup at the first step, or from 0 with `from_zero`
    (the released code's schedule).
    """
    warmup = int(warmup_fraction * total)
    if step < warmup:
        return peak * (step if from_zero else step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_precision(precision: str) -> None:
    """fp32 keeps full float32 matmuls (the paper's numerics); tf32 and bf16 allow TF32 matmuls."""
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32"


class BatchOrder:
    """Per-model batch indices, a fresh permutation of the model's training set every epoch.

    The order is a pure function of (model seed, step), so a resumed run draws the same batches.
    Permutations live on the device and are drawn once per epoch; a step only slices them, so
    drawing a batch needs no transfer from the host.
    """

    def __init__(self, seeds, sizes, batch_size, device=torch.device("cpu")):
        self.seeds, self.sizes, self.batch_size = seeds, sizes, batch_size
        self.batches = [size // batch_size for size in sizes]
        self.epoch = [None] * len(seeds)
        self.permutation = torch.zeros(len(seeds), max(sizes), dtype=torch.long, device=device)
        self.offsets = torch.arange(batch_size, device=device)
        self.batches_on_device = torch.tensor(self.batches, device=device)

    def indices(self, step: int) -> torch.Tensor:
        """[K, batch_size] row indices into each model's training set."""
        for k, (seed, size, batches) in enumerate(zip(self.seeds, self.sizes, self.batches)):
            epoch = step // batches
            if self.epoch[k] != epoch:
                generator = torch.Generator().manual_seed(seed + epoch)
                self.permutation[k, :size] = torch.randperm(size, generator=generator).to(self.permutation.device)
                self.epoch[k] = epoch
        start = (step % self.batches_on_device) * self.batch_size
        return self.permutation.gather(1, start[:, None] + self.offsets)


def ice_permutations(seeds, step, batch_size, n_context, permute, per_batch: bool = False) -> torch.Tensor:
    """[K, B, n_context] orders of the ICEs; the identity for models that do not permute.

    Each sequence gets its own order, or with `per_batch` (the released code) one order per step is
    shared by the model's whole batch.
    """
    orders = []
    for seed, shuffle in zip(seeds, permute):
        if shuffle:
            generator = torch.Generator().manual_seed((seed + 1_000_003 * (step + 1)) % 2**63)
            draws = torch.rand(1 if per_batch else batch_size, n_context, generator=generator)
            orders.append(draws.argsort(-1).expand(batch_size, n_context))
        else:
            orders.append(torch.arange(n_context).expand(batch_size, n_context))
    return torch.stack(orders)


def query_loss(prediction, target):
    """Squared error summed over outputs, mean over sequences and queries: [K, ...]."""
    return ((prediction - target) ** 2).sum(-1).mean((-2, -1))


class GroupTrainer:
    """K models of one shape and schedule, their data on the device, one AdamW over all of them."""

    def __init__(self, members: list[Run], execution: dict):
        self.members = members
        self.spec = members[0].spec
        signature = group_signature(self.spec)
        for member in members:
            differing = [key for key, value in group_signature(member.spec).items() if value != signature[key]]
            if differing:
                raise ValueError(f"run {member.key} differs from its group in {differing}")
        self.execution = execution
        self.device = resolve_device(execution)
        self.n_context = self.spec["n_context"]
        self.config = models.ModelConfig.from_spec(self.spec)
        self.seeds = [m.seed for m in members]
        self._load_data()
        self.mask = torch.stack(
            [masks.visibility(m.spec["mask"], self.n_context, self.spec["n_queries"], m.spec.get("train_n_context")) for m in members]
        ).to(self.device)
        self.l2_weight = torch.tensor([m.spec["l2_weight"] if m.spec["l2"] else 0.0 for m in members], device=self.device)
        # Without an ICE term the loss reads only the queries' outputs, so the last layer computes
        # only the query positions (the same loss and gradients, with less work).
        self.ice_term = has_ice_term(self.spec)
        self.model = models.build(len(members), self.config)
        models.initialise(self.model, self.seeds)
        self.model.to(self.device)
        s = self.spec
        compile_mode = execution["compile"]
        # On a GPU the fused AdamW is one kernel already; on a CPU the step is compiled into a few
        # loops, and it reads the learning rate from a tensor, so a new rate needs no recompile.
        compile_optimizer = compile_mode != "off" and self.device.type == "cpu"
        # On a CPU, eager, the AdamW step is the CPU kernels' (torch's where they do not apply).
        adamw = cpu_kernels.AdamW if self.device.type == "cpu" and not compile_optimizer else torch.optim.AdamW
        self.optimizer = adamw(
            self.model.parameters(), lr=torch.tensor(s["learning_rate"]) if compile_optimizer else s["learning_rate"],
            betas=(s["beta1"], s["beta2"]), eps=s["adam_eps"], weight_decay=s["weight_decay"], fused=self.device.type == "cuda",
        )
        self.step = 0
        self.curve = []
        self.loss_fn, self.optimizer_step = self._loss, self._optimizer_step
        if compile_mode != "off":
            self.loss_fn = compiling.compiled(self._loss, compile_mode, self.device)
        if compile_optimizer:
            self.optimizer_step = compiling.compiled(self._optimizer_step, compile_mode, self.device)

    def _load_data(self):
        """Unique training sets on the device, and each model's index into them."""
        paths = list(dict.fromkeys(m.train_data for m in self.members))
        sets = [data.load(p) for p in paths]
        largest = max(len(s["x"]) for s in sets)

        def pad(t):  # smaller sets are padded to stack; their padding is never indexed
            return torch.cat([t, t.new_zeros(largest - len(t), *t.shape[1:])])

        self.x = torch.stack([pad(s["x"]) for s in sets]).to(self.device)
        self.y = torch.stack([pad(s["y"]) for s in sets]).to(self.device)
        self.dataset_of = torch.tensor([paths.index(m.train_data) for m in self.members], device=self.device)
        sizes = [len(sets[paths.index(m.train_data)]["x"]) for m in self.members]
        self.order = BatchOrder(self.seeds, sizes, self.spec["batch_size"], self.device)

    def batch(self, step):
        rows = self.order.indices(step)
        x = self.x[self.dataset_of[:, None], rows]
        y = self.y[self.dataset_of[:, None], rows]
        permute = [m.spec["permute"] for m in self.members]
        if any(permute):
            order = ice_permutations(
                self.seeds, step, self.spec["batch_size"], self.n_context, permute, per_batch=self.config.released
            ).to(self.device)

            def shuffle_ices(t):
                ices = t[:, :, : self.n_context].gather(2, order[..., None].expand(-1, -1, -1, t.shape[-1]))
                return torch.cat([ices, t[:, :, self.n_context :]], dim=2)

            x, y = shuffle_ices(x), shuffle_ices(y)
        return x, y

    def _loss(self, x, y):
        """Per-model losses [K] and query MSEs [K].

        Standard: query MSE + l2_weight * ICE term, plus every probe's query MSE. Released: the
        mean squared error over positions with ICE targets 0 (the ICE term), the ICE positions
        weighing l2_weight each and the queries 1, so l2_weight 1 is the released even_loss
        (n_context * ICE + n_queries * query) / T and no L2 the query MSE alone; plus the query MSE
        of the probes of layers 1..L-1, whose last-layer probe is the prediction itself.
        """
        n, n_queries = self.n_context, self.spec["n_queries"]
        start = 0 if self.ice_term else n
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.spec["precision"] == "bf16"):
            output, probes = self.model(tokens(x, y, n), self.mask, start)
        output, probes = output.float(), probes.float()
        query = query_loss(output[:, :, n - start :], y[:, :, n:])
        ice = (output[:, :, :n] ** 2).sum(-1).mean((-2, -1)) if self.ice_term else torch.zeros_like(query)
        if self.config.released:
            ice_weight = self.l2_weight * n
            loss = (n_queries * query + ice_weight * ice) / (n_queries + ice_weight)
            probes = probes[:-1]
        else:
            loss = query + self.l2_weight * ice
        probe = query_loss(probes[:, :, :, n - start :], y[:, :, n:]).sum(0)
        return loss + probe, query

    def _optimizer_step(self):
        self.optimizer.step()

    def train_step(self):
        """One optimiser step of every model; returns the per-model losses and query MSEs, on the device."""
        s = self.spec
        lr = learning_rate(self.step, s["steps"], s["learning_rate"], s["warmup_fraction"], from_zero=self.config.released)
        for param_group in self.optimizer.param_groups:
            if isinstance(param_group["lr"], torch.Tensor):
                param_group["lr"].fill_(lr)
            else:
                param_group["lr"] = lr
        if self.execution["compile"] == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's CUDA-graph outputs are done with
        loss, query = self.loss_fn(*self.batch(self.step))
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optimizer_step()
        self.step += 1
        return loss.detach(), query.detach()

    def train(self, progress: bool = True):
        s, every = self.spec, self.execution["log_every"]
        set_precision(s["precision"])
        bar = tqdm(total=s["steps"], initial=self.step, disable=not progress, mininterval=2, desc="train")
        started = time.perf_counter()
        while self.step < s["steps"]:
            loss, query = self.train_step()
            bar.update()
            if self.step % every == 0 or self.step == s["steps"]:
                self._record(loss.cpu(), query.cpu())  # the only host sync
                bar.set_postfix(loss=f"{self.curve[-1]['loss'].mean():.3g}")
            if self.step % self.execution["checkpoint_every"] == 0 and self.step < s["steps"]:
                self.save_resume()
        bar.close()
        self.seconds = time.perf_counter() - started

    def _record(self, loss, query):
        bad = [m for m, value in zip(self.members, loss) if not torch.isfinite(value)]
        if bad:
            names = ", ".join(str(m.directory) for m in bad)
            raise DivergenceError(f"loss is not finite at step {self.step} for run(s): {names}")
        self.curve.append({"step": self.step, "loss": loss.numpy(), "query_mse": query.numpy()})

    # --- checkpoints: each run's slice of the stacked state, so runs stay separable ---

    def _check_finite(self, writing: str):
        """Raise DivergenceError naming every run whose weights or optimiser moments are not all finite.

        The loss is only looked at every log_every steps, so without this a diverged run could
        write its NaNs into a checkpoint and resume them.
        """
        finite = torch.ones(len(self.members), dtype=torch.bool, device=self.device)
        for parameter in self.model.parameters():
            moments = [v for v in self.optimizer.state.get(parameter, {}).values() if v.dim()]  # not the shared step count
            for tensor in (parameter.detach(), *moments):
                finite &= torch.isfinite(tensor).reshape(len(self.members), -1).all(1)
        bad = [m for m, ok in zip(self.members, finite.tolist()) if not ok]
        if bad:
            names = ", ".join(str(m.directory) for m in bad)
            raise DivergenceError(f"weights or optimiser state are not finite at step {self.step} for run(s): {names}; no {writing} written")

    def _state(self, k: int) -> dict:
        names = dict(self.model.named_parameters())
        optimizer = {}
        for name, parameter in names.items():
            state = self.optimizer.state.get(parameter, {})
            optimizer[name] = {key: (v[k : k + 1].cpu() if v.dim() else v.cpu()) for key, v in state.items()}
        return {
            "model": {name: p.detach()[k : k + 1].cpu() for name, p in names.items()},
            "optimizer": optimizer,
            "step": self.step,
            "curve": [{key: (row[key][k] if key != "step" else row[key]) for key in row} for row in self.curve],
            "spec": self.members[k].spec,
            "key": self.members[k].key,
        }

    def save_resume(self):
        self._check_finite("resume.pt")
        for k, member in enumerate(self.members):
            checked.save(self._state(k), member.directory / "resume.pt")

    def try_resume(self) -> bool:
        """Continue from the members' resume checkpoints if all of them are intact, finite and at the same step.

        A checkpoint that is damaged or holds non-finite numbers is refused with a message naming its
        run, and the group trains from step 0 (overwriting it at its next checkpoint).
        """
        paths = [m.directory / "resume.pt" for m in self.members]
        if not all(p.exists() for p in paths):
            return False
        states, refusals = [], []
        for member, path in zip(self.members, paths):
            try:
                state = checked.load(path, remedy="The next checkpoint replaces it.", weights_only=False)
            except checked.DamagedFileError as error:
                refusals.append(f"refusing the checkpoint of run {member.directory}: {error}")
                continue
            if checkpoint_is_finite(state):
                states.append(state)
            else:
                refusals.append(f"refusing the checkpoint of run {member.directory}: {path} holds non-finite weights or optimiser state")
        if refusals:
            print("\n".join(refusals) + f"\ntraining the group's {len(self.members)} runs from step 0")
            return False
        if len({s["step"] for s in states}) != 1 or any(s["key"] != m.key for s, m in zip(states, self.members)):
            return False
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                parameter.copy_(torch.cat([s["model"][name] for s in states]).to(self.device))
                moments = states[0]["optimizer"][name]
                if moments:
                    self.optimizer.state[parameter] = {
                        key: (torch.cat([s["optimizer"][name][key] for s in states]).to(self.device) if v.dim() else v.clone())
                        for key, v in moments.items()
                    }
        self.step = states[0]["step"]
        rows = len(states[0]["curve"])
        self.curve = [
            {"step": states[0]["curve"][i]["step"]} | {
                key: torch.tensor([s["curve"][i][key] for s in states]).numpy() for key in ("loss", "query_mse")
            }
            for i in range(rows)
        ]
        return True

    def save_outputs(self):
        """Each run's curve.parquet, train.log and, last and read-only, model.pt (see icl.store); then its resume checkpoint goes."""
        self._check_finite("model.pt")
        for k, member in enumerate(self.members):
            state = self._state(k)
            metrics.write(curve_frame(member, state["curve"]), member.file(store.CURVE), member.spec)
            last = state["curve"][-1]
            write_text(
                member.file("train.log"),
                f"run {member.key}\nspec {json.dumps(member.spec, sort_keys=True)}\n"
                f"trained {self.step} steps in a group of {len(self.members)} on {self.device} "
                f"({self.seconds:.1f} s for the group)\nfinal loss {last['loss']:.6g}, train query MSE {last['query_mse']:.6g}\n",
            )
            model = member.file(store.MODEL)
            checked.save({"model": state["model"], "spec": member.spec, "key": member.key, "step": self.step}, model)
            store.protect(model)
            member.file("resume.pt").unlink(missing_ok=True)


def checkpoint_is_finite(state: dict) -> bool:
    """Whether a run's checkpoint holds only finite weights and optimiser moments."""
    moments = [v for per_parameter in state["optimizer"].values() for v in per_parameter.values()]
    return all(torch.isfinite(t).all() for t in [*state["model"].values(), *moments])


def load_model(path) -> dict:
    """A trained run's model.pt: {"model": weights, "spec", "key", "step"}."""
    return checked.load(
        path, weights_only=False,
        remedy="To retrain the run, delete its directory and rerun the snakemake command with `--forcerun` and its "
        f"group's manifest (`grep -l {Path(path).parent.name.rsplit('-', 1)[-1]} results/groups/*/trained.json` names it); "
        "that job trains only the runs missing from the store.",
    )


def curve_frame(member: Run, curve: list) -> pd.DataFrame:
    rows = [
        runs.identity(member.spec) | dict(
            split="train", test_set="train", n_context=member.spec["n_context"], x_shift=0.0, layer=member.spec["n_layers"],
            step=row["step"], metric=metric, value=float(row[metric]),
        )
        for row in curve
        for metric in ("loss", "query_mse")
    ]
    return pd.DataFrame(rows)


def models_per_pass(members: list[Run], budget_gb: float) -> int:
    """How many of the group's models fit the memory budget at once (at least one)."""
    per_model = shapes.run_training_bytes(members[0].spec)  # its training set counted as unshared, the worst case
    return max(1, int(budget_gb * 1e9 // per_model))


def train_group(members: list[Run], execution: dict, manifest=None, progress: bool = True) -> list[GroupTrainer]:
    """Train the group's runs that are not in the store (icl.store), then write the group's manifest if given.

    A group larger than execution.memory_budget_gb allows is trained in several passes, each a
    batched computation of as many models as fit, rather than failing for lack of memory.
    """
    missing = store.to_train(members)
    for member in members:
        print(f"{'training' if member in missing else 'stored  '} {member.key} {member.directory}")
    print(f"{len(missing)} of the group's {len(members)} runs to train{' (forced)' if store.forced('train') else ''}")
    trainers = []
    if missing:
        set_cpu_execution(execution)
        size = models_per_pass(missing, execution["memory_budget_gb"])
        passes = [missing[i : i + size] for i in range(0, len(missing), size)]
        if len(passes) > 1:
            print(f"{len(missing)} runs exceed the memory budget of {execution['memory_budget_gb']} GB: {len(passes)} passes of up to {size}")
        for chunk in passes:
            trainers.append(_train_pass(chunk, execution, progress))
    if manifest:
        # Not train.log, which records wall-clock times: the manifest of the same models is the same bytes.
        store.write_manifest(manifest, members, lambda run: [run.file(store.CURVE), run.file(store.MODEL)])
    return trainers


def _train_pass(chunk: list[Run], execution: dict, progress: bool) -> GroupTrainer:
    trainer = GroupTrainer(chunk, execution)
    if trainer.try_resume():
        print(f"resumed {len(chunk)} runs at step {trainer.step}")
    for member in chunk:
        store.forget(member)  # a model and metrics from before are stale from here on
    trainer.train(progress=progress)
    trainer.save_outputs()
    if trainer.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(trainer.device)
        print(f"peak device memory {peak / 1e9:.2f} GB, {peak / len(chunk) / 1e6:.1f} MB per model")
        torch.cuda.reset_peak_memory_stats(trainer.device)
    return trainer
