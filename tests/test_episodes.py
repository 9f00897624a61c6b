"""Real-data episodes (icl.episodes) and the classifiers scored beside the models on them (icl.baselines)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from icl import baselines, config, data, episodes, plan

from test_data import spec


def real_spec(**overrides):
    return spec(task="real", x_dim=4, n_context=10, n_queries=5, **overrides)


def original_labels(pool):
    return episodes.dataset(pool.dataset)[1]


def test_the_training_and_test_halves_split_every_class():
    for name in episodes.LOADERS:
        _, labels, in_train = episodes.dataset(name)
        for c in labels.unique():
            members = labels == c
            assert abs(int(in_train[members].sum()) - int((~in_train[members]).sum())) <= 1, (name, int(c))


def test_training_never_sees_the_held_out_classes_samples_or_datasets():
    trained = {(p.dataset, c, i) for p in episodes.TRAIN_POOLS for c in p.classes for i in episodes.samples(p, (c,)).tolist()}
    for name, pools in episodes.TEST_SETS.items():
        for pool in pools:
            tested = {(pool.dataset, c, i) for c in pool.classes for i in episodes.samples(pool, (c,)).tolist()}
            assert tested and not tested & trained, name
    assert {p.dataset for p in episodes.TEST_SETS["iris"] + episodes.TEST_SETS["wine"]}.isdisjoint(
        {p.dataset for p in episodes.TRAIN_POOLS}
    )
    unseen = {c for p in episodes.TEST_SETS["unseen_classes"] for c in p.classes}
    assert unseen.isdisjoint({c for p in episodes.TRAIN_POOLS if p.dataset == "digits" for c in p.classes})


def test_an_episode_draws_distinct_samples_of_two_classes_of_its_pool():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        pool, pair, picked = episodes.choose(episodes.TRAIN_POOLS, generator, 15)
        assert pool in episodes.TRAIN_POOLS and len(set(pair.tolist())) == 2 and set(pair.tolist()) <= set(pool.classes)
        assert len(set(picked.tolist())) == 15
        assert set(original_labels(pool)[picked].tolist()) <= set(pair.tolist())
        assert set(picked.tolist()) <= set(episodes.samples(pool, pair.tolist()).tolist())


def test_labels_are_a_random_permutation_of_the_two_classes():
    generator = torch.Generator().manual_seed(1)
    first_class_called_zero = []
    for _ in range(200):
        pool, pair, picked = episodes.choose(episodes.TEST_SETS["iris"], generator, 30)
        _, y = episodes.present(pool, pair, picked, generator, 4)
        label = y.argmax(-1)
        is_first = original_labels(pool)[picked] == pair[0]
        assert (label[is_first] == label[is_first][0]).all() and (label[~is_first] != label[is_first][0]).all()
        first_class_called_zero.append(int(label[is_first][0]) == 0)
    assert 0.35 < np.mean(first_class_called_zero) < 0.65


def test_x_is_a_fresh_projection_of_the_standardised_features():
    features, _, _ = episodes.dataset("wine")
    pool, pair = episodes.TEST_SETS["wine"][0], torch.tensor([0, 1])
    picked = episodes.samples(pool, [0, 1])[:20]
    a, _ = episodes.present(pool, pair, picked, torch.Generator().manual_seed(0), 4)
    b, _ = episodes.present(pool, pair, picked, torch.Generator().manual_seed(1), 4)
    assert a.shape == (20, 4) and not torch.allclose(a, b)
    # the same samples through some D x 4 map: x lies in the span of the features' rows
    projection = torch.linalg.lstsq(features[picked], a.double()).solution
    torch.testing.assert_close(features[picked] @ projection, a.double(), rtol=0, atol=1e-4)
    assert torch.allclose(features.mean(0), torch.zeros(features.shape[1], dtype=torch.float64), atol=1e-10)


def test_real_data_files_have_every_test_set_and_nested_training_sets():
    small, large = data.training_set(real_spec(train_batches=2)), data.training_set(real_spec(train_batches=4))
    assert large["x"].shape == (16, 15, 4) and large["y"].shape == (16, 15, 2)
    torch.testing.assert_close(large["x"][:8], small["x"], rtol=0, atol=0)
    sets = data.test_sets(real_spec(), [1.0])["sets"]
    assert [s["test_set"] for s in sets] == list(episodes.TEST_SETS)
    assert all(s["x_shift"] == 0.0 and s["x"].shape == (8, 15, 4) for s in sets)
    assert (torch.stack([s["y"] for s in sets]).sum(-1) == 1).all()


def test_prompts_longer_than_the_smallest_class_pair_are_rejected_before_any_work():
    assert episodes.longest_prompt() == 100  # iris: 50 samples per class
    cfg = config.validate({"sweeps": {"real": {"grid": {"task": ["real"], "n_context": [90]}}}, "data": {"n_queries": 20}})
    with pytest.raises(config.ConfigError, match="n_context \\+ n_queries = 110"):
        plan.make_plan(cfg)
    with pytest.raises(ValueError, match="exceed the 100 samples"):
        episodes.draw(episodes.TEST_SETS["iris"], torch.Generator(), 1, 101, 4)


# --- classifiers on the same ICEs ---


def random_episodes(seed, episodes_=16, n=9, q=5, d=3, classes=2):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(episodes_, n + q, d, generator=generator, dtype=torch.float64)
    labels = torch.randint(classes, (episodes_, n + q), generator=generator)
    labels[:, 0], labels[:, 1] = 0, 1  # both classes among the ICEs
    return x[:, :n], torch.nn.functional.one_hot(labels[:, :n], classes).double(), x[:, n:]


@pytest.mark.parametrize("n", [3, 5, 9])
def test_knn_predicts_like_scikit_learn(n):
    x, y, query = random_episodes(0, n=n)
    ours = baselines.predict("knn", x, y, query).argmax(-1)
    for b in range(len(x)):
        reference = KNeighborsClassifier(n_neighbors=baselines.KNN_K).fit(x[b].numpy(), y[b].argmax(-1).numpy())
        np.testing.assert_array_equal(ours[b].numpy(), reference.predict(query[b].numpy()))


def test_knn_with_fewer_ices_than_k_votes_with_all_of_them():
    x, y, query = random_episodes(1, n=2)
    votes = baselines.predict("knn", x, y, query)
    torch.testing.assert_close(votes, y.mean(1, keepdim=True).expand_as(votes))


def test_logistic_regression_predicts_like_scikit_learn():
    x, y, query = random_episodes(2)
    ours = baselines.predict("logistic_regression", x, y, query)
    for b in range(len(x)):
        reference = LogisticRegression().fit(x[b].numpy(), y[b].argmax(-1).numpy())
        np.testing.assert_allclose(ours[b].numpy(), reference.predict_proba(query[b].numpy()), rtol=1e-6)


def test_logistic_regression_on_ices_of_one_class_predicts_that_class():
    x, y, query = random_episodes(3)
    y = torch.zeros_like(y)
    y[..., 1] = 1.0
    assert (baselines.predict("logistic_regression", x[:, :3], y[:, :3], query).argmax(-1) == 1).all()


def test_classifiers_separate_separable_episodes():
    x, y, query = random_episodes(4, n=40, q=20)
    w = torch.randn(3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.nn.functional.one_hot((x @ w > 0).long(), 2).double()
    truth = (query @ w > 0).long()
    for name in ("knn", "logistic_regression"):
        accuracy = (baselines.predict(name, x, y, query).argmax(-1) == truth).double().mean()
        assert accuracy > 0.85, name
