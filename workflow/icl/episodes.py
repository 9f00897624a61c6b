"""Real-data classification episodes from the datasets that ship with scikit-learn (no download).

One episode, the real-data counterpart of a synthetic prompt:
  1. pick a dataset of the split and two of its classes;
  2. draw the ICEs and queries from those two classes' samples, without replacement;
  3. map x through a fresh Gaussian projection from the dataset's features to x_dim;
  4. relabel the two classes with a random permutation (one-hot y).
The projection and the labels change with every episode, so a model can only classify a query by
reading the ICEs. Features are standardised per dataset first (no labels are used for that).

Models train on episodes from TRAIN_POOLS and are tested on TEST_SETS: held-out samples of the
training classes, held-out classes of a training dataset, and datasets never seen in training.
"""

from dataclasses import dataclass
from functools import cache

import torch
from sklearn import datasets

from . import tasks

LOADERS = {
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}
WAYS = tasks.RealClassification.output_dim  # classes per episode: breast cancer has only two


@dataclass(frozen=True)
class Pool:
    """The samples of some classes of one dataset: the training half, the test half, or all of them."""

    dataset: str
    classes: tuple
    part: str = "all"  # train, test or all


TRAIN_POOLS = (Pool("digits", tuple(range(7)), "train"), Pool("breast_cancer", (0, 1), "train"))
TEST_SETS = {
    "seen_classes": (Pool("digits", tuple(range(7)), "test"), Pool("breast_cancer", (0, 1), "test")),
    "unseen_classes": (Pool("digits", (7, 8, 9)),),
    "iris": (Pool("iris", (0, 1, 2)),),
    "wine": (Pool("wine", (0, 1, 2)),),
}  # their titles in the figures and tables: icl.names.TEST_SET_TITLES


@cache
def dataset(name: str):
    """Standardised features [N, D] (float64), labels [N], and which samples are in the training half."""
    bunch = LOADERS[name]()
    x = torch.as_tensor(bunch.data, dtype=torch.float64)
    std = x.std(0)
    x = (x - x.mean(0)) / torch.where(std > 0, std, 1.0)  # constant pixels of digits stay 0
    labels = torch.as_tensor(bunch.target)
    # A fixed half of each class trains; the split is the same for every seed and run.
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    in_train = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = (labels == c).nonzero()[:, 0]
        in_train[members[torch.randperm(len(members), generator=generator)[: len(members) // 2]]] = True
    return x, labels, in_train


def samples(pool: Pool, classes) -> torch.Tensor:
    """Indices of the pool's samples of `classes`."""
    _, labels, in_train = dataset(pool.dataset)
    chosen = torch.isin(labels, torch.tensor(classes))
    if pool.part != "all":
        chosen &= in_train if pool.part == "train" else ~in_train
    return chosen.nonzero()[:, 0]


def longest_prompt(pools=None) -> int:
    """The most ICEs plus queries that every pair of classes in `pools` (default: all) can supply."""
    pools = pools or TRAIN_POOLS + sum(TEST_SETS.values(), ())
    return min(
        len(samples(pool, (a, b)))
        for pool in pools for i, a in enumerate(pool.classes) for b in pool.classes[i + 1 :]
    )


def choose(pools, generator, length: int):
    """Steps 1 and 2 of an episode: the pool, its two classes [2], and the samples' indices [length]."""
    pool = pools[torch.randint(len(pools), (), generator=generator)]
    pair = torch.tensor(pool.classes)[torch.randperm(len(pool.classes), generator=generator)[:WAYS]]
    candidates = samples(pool, pair.tolist())
    return pool, pair, candidates[torch.randperm(len(candidates), generator=generator)[:length]]


def present(pool: Pool, pair, picked, generator, x_dim: int):
    """Steps 3 and 4: the samples' projected x [length, x_dim] and permuted one-hot labels [length, 2]."""
    features, labels, _ = dataset(pool.dataset)
    projection = torch.randn(features.shape[1], x_dim, generator=generator, dtype=torch.float64)
    x = features[picked] @ projection / features.shape[1] ** 0.5  # unit variance per coordinate
    relabel = torch.randperm(WAYS, generator=generator)  # class pair[i] is called relabel[i]
    label = relabel[(labels[picked] == pair[1]).long()]
    return x.float(), torch.nn.functional.one_hot(label, WAYS).float()


def draw(pools, generator, episodes: int, length: int, x_dim: int):
    """`episodes` prompts of `length` positions from `pools`: x [E, length, x_dim], y [E, length, WAYS]."""
    if length > longest_prompt(pools):
        raise ValueError(f"{length} ICEs and queries per episode exceed the {longest_prompt(pools)} samples of the smallest class pair")
    drawn = [present(*choose(pools, generator, length), generator, x_dim) for _ in range(episodes)]
    return torch.stack([x for x, _ in drawn]), torch.stack([y for _, y in drawn])
