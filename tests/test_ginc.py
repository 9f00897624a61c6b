"""The GINC-style corpus: its chains and emissions, and the exact inference against brute-force enumeration."""

import itertools

import numpy as np
import pytest

from icl import ginc

SPEC = dict(n_entities=3, n_properties=4, vocab_size=6, n_concepts=2, n_heldout_concepts=2, seed=0,
            documents=200, document_length=400, k=[0, 2], example_lengths=[3], prompts=64)


@pytest.fixture(scope="module")
def family():
    return ginc.family(SPEC)


def test_transition_matrices_are_doubly_stochastic_mixes_and_the_entity_chain_is_sticky(family):
    for matrix in [family.entity_transition, *family.property_transitions]:
        assert np.allclose(matrix.sum(1), 1) and np.allclose(matrix.sum(0), 1)  # so the uniform distribution is stationary
        assert (matrix >= 0).all()
    assert (np.diag(family.entity_transition) >= ginc.STICKINESS).all()
    # concepts differ from each other
    assert not np.allclose(family.property_transitions[0], family.property_transitions[1])
    assert np.allclose(family.entity_start.sum(), 1) and family.entity_start.max() / family.entity_start.min() < 1.1


def test_memory_has_the_delimiter_in_column_zero_only(family):
    assert (family.memory[:, 0] == ginc.DELIMITER).all()
    assert (family.memory[:, 1:] >= 1).all() and (family.memory < SPEC["vocab_size"]).all()


def test_sampled_chains_follow_their_transition_matrices(family):
    rng = np.random.default_rng(1)
    concepts = np.repeat([0, 1], 2000)
    entities, properties = ginc.sample_chains(family, rng, concepts, 60)
    counts = np.zeros((family.n_entities, family.n_entities))
    np.add.at(counts, (entities[:, :-1], entities[:, 1:]), 1)
    assert np.abs(counts / counts.sum(1, keepdims=True) - family.entity_transition).max() < 0.01
    for c in (0, 1):
        rows = concepts == c
        counts = np.zeros((family.n_properties, family.n_properties))
        np.add.at(counts, (properties[rows, :-1], properties[rows, 1:]), 1)
        assert np.abs(counts / counts.sum(1, keepdims=True) - family.property_transitions[c]).max() < 0.015


def test_chains_stay_uniform_over_states(family):
    """Doubly stochastic chains from a near-uniform start stay near uniform at every time step."""
    rng = np.random.default_rng(2)
    entities, properties = ginc.sample_chains(family, rng, np.zeros(20000, dtype=int), 30)
    for states, n in ((entities, family.n_entities), (properties, family.n_properties)):
        for t in (0, 10, 29):
            frequencies = np.bincount(states[:, t], minlength=n) / len(states)
            assert np.abs(frequencies - 1 / n).max() < 0.02


def test_documents_emit_the_memory_cell_of_their_states(family):
    corpus = ginc.corpus(SPEC, family)
    assert corpus["tokens"].shape == (SPEC["documents"], SPEC["document_length"])
    assert set(np.unique(corpus["concept"])) <= {0, 1}  # pretraining concepts only
    # every token pair that follows a delimiter keeps to tokens some state can emit
    assert np.isin(corpus["tokens"], family.memory).all()
    again = ginc.corpus(SPEC, ginc.family(SPEC))
    assert np.array_equal(again["tokens"], corpus["tokens"])  # seeded by the spec


# --- exact inference against enumeration of every hidden path ---


def brute_force(family, x, concept, s0):
    """P(x | concept, s0) and the next token's distribution given x, by summing over every hidden path."""
    states = list(itertools.product(range(family.n_entities), range(family.n_properties)))
    transition = family.property_transitions[concept]
    likelihood, following = 0.0, np.zeros(family.vocab_size)
    for path in itertools.product(states, repeat=len(x) + 1):
        if path[0][1] != s0:
            continue
        p = 1 / family.n_entities
        for (v, s), (w, r) in zip(path, path[1:]):
            p *= family.entity_transition[v, w] * transition[s, r]
        if all(family.memory[v, s] == token for (v, s), token in zip(path, x)):
            likelihood += p
            following[family.memory[path[-1]]] += p
    return likelihood, following / likelihood if likelihood else following


def test_forward_algorithm_matches_enumeration(family):
    rng = np.random.default_rng(3)
    entities, properties = ginc.sample_chains(family, rng, np.zeros(6, dtype=int), 3, entities=rng.integers(0, 3, 6), properties=np.full(6, 2))
    xs = family.memory[entities, properties]
    xs[-1] = [1, 1, 1]  # possibly impossible under some hypotheses
    for concept, s0 in ((0, 2), (1, 1), (0, 3)):
        log_likelihood, next_token = ginc.forward(family, xs, concept, s0)
        for n, x in enumerate(xs):
            likelihood, following = brute_force(family, x, concept, s0)
            assert np.exp(log_likelihood[n]) == pytest.approx(likelihood, rel=1e-9, abs=1e-300)
            assert np.allclose(next_token[n], following)


def test_bayes_prediction_matches_enumeration(family):
    rng = np.random.default_rng(4)
    for split in ("in_distribution", "out_of_distribution"):
        prompts = ginc.prompt_set(family, rng, split, k=2, example_length=3, count=12)
        tokens = prompts["tokens"]
        xs = [tokens[:, 0:2], tokens[:, 4:6], tokens[:, 8:10]]
        labels = [tokens[:, 2], tokens[:, 6]]
        for n in range(len(tokens)):
            votes = np.zeros(family.vocab_size)
            for concept in family.concepts(split):
                for s0 in range(1, family.n_properties):
                    weight = 1.0
                    for i, x in enumerate(xs):
                        likelihood, following = brute_force(family, x[n], concept, s0)
                        weight *= likelihood
                        if i < 2 and (likelihood == 0 or following.argmax() != labels[i][n]):
                            weight = 0.0
                    if weight:
                        votes[following.argmax()] += weight
            assert prompts["bayes"][n] == votes.argmax()
            assert prompts["label"][n] == brute_force(family, xs[2][n], prompts["concept"][n], prompts["start"][n])[1].argmax()


def test_prompts_are_examples_answers_and_delimiters(family):
    rng = np.random.default_rng(5)
    prompts = ginc.prompt_set(family, rng, "in_distribution", k=3, example_length=4, count=50)
    tokens = prompts["tokens"]
    assert tokens.shape == (50, 3 * 5 + 3)
    assert (tokens[:, [4, 9, 14]] == ginc.DELIMITER).all()
    for start in (0, 5, 10):  # each example's answer is the label of its x
        for n in range(50):
            x = tokens[n : n + 1, start : start + 3]
            assert tokens[n, start + 3] == ginc.label(family, x, prompts["concept"][n], prompts["start"][n])[0]
    assert (prompts["start"] >= 1).all() and set(prompts["concept"]) <= {0, 1}
    held_out = ginc.prompt_set(family, rng, "out_of_distribution", k=1, example_length=3, count=50)
    assert set(held_out["concept"]) <= {2, 3}


def test_bayes_accuracy_rises_with_examples():
    sets = ginc.prompt_sets(SPEC | {"k": [0, 4], "prompts": 200}, ginc.family(SPEC))
    accuracy = {(s["split"], s["k"]): (s["bayes"] == s["label"]).float().mean().item() for s in sets}
    for split in ("in_distribution", "out_of_distribution"):
        assert accuracy[split, 4] > accuracy[split, 0]
