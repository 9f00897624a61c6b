"""A GINC-style corpus (Xie et al., ICLR 2022): a family of HMMs whose pretraining text makes in-context
learning a matter of inferring the document's latent concept.

- Hidden state: a pair (entity v, property s). It emits one token deterministically, memory[v, s];
  property 0 emits the delimiter (token 0), the other cells are random tokens 1..vocab_size-1.
- Dynamics: entity and property follow independent Markov chains. The entity chain, shared by every
  concept, is sticky: 0.9 I + 0.1 T. The property chain is the concept. Each T is a mix of random
  permutation matrices weighted by softmax((U(0,1) - 0.5) / 0.1), so it is doubly stochastic and its
  stationary distribution is uniform. Start distributions are near uniform.
- Pretraining documents: each draws one of the first `n_concepts` concepts and emits a chain.
- Prompts: k examples and one test example from one concept (pretraining concepts in distribution,
  the held-out ones out of distribution) and one start property s0 != 0. An example starts at
  (uniform entity, s0) and emits L-1 tokens x; its answer is the label of x, then the delimiter.
  The label of x is the argmax of the concept's next-token distribution given x and that start.

The Bayes-optimal prediction knows the family and how prompts are drawn, with a uniform prior over
(concept, s0) in the prompt's concept set: it weighs each hypothesis by the likelihood of every x
(forward algorithm over the hidden states) and by whether it labels every example as the prompt
does, and returns the token with the largest posterior probability of being the test label.
Out of distribution, that predictor knows the held-out concepts, so its accuracy is the ceiling of
a learner that has identified the prompt's concept set, not of one pretrained on the corpus.
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from . import checked

DELIMITER = 0
STICKINESS = 0.9  # the entity chain stays put with at least this probability
TEMPERATURE = 0.1  # of the softmax that weighs the permutation matrices
REBUILD = "To rebuild it, delete it and rerun the same snakemake command."


def generator(spec: dict, purpose: str) -> np.random.Generator:
    """A numpy generator seeded by a hash of the spec and what it draws, the same on every machine.

    The spec holds the corpus and the prompt settings together, so changing the prompt settings also draws a new family
    and corpus.
    """
    digest = hashlib.sha256(json.dumps([spec, purpose], sort_keys=True).encode()).hexdigest()
    return np.random.default_rng(int(digest[:16], 16))


def mix_of_permutations(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, n] transition matrix: n random permutation matrices weighted by softmax((U - 0.5) / 0.1)."""
    logits = (rng.uniform(size=n) - 0.5) / TEMPERATURE
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    matrix = np.zeros((n, n))
    for weight in weights:
        matrix[np.arange(n), rng.permutation(n)] += weight
    return matrix


def near_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    p = 1.0 + 0.1 * rng.uniform(size=n)
    return p / p.sum()


@dataclass(frozen=True)
class Family:
    """The HMMs of one corpus: concepts 0..n_concepts-1 are pretrained on, the rest are held out."""

    memory: np.ndarray  # [E, P] token ids; column 0 is the delimiter
    entity_transition: np.ndarray  # [E, E]
    property_transitions: np.ndarray  # [C, P, P], one per concept
    entity_start: np.ndarray  # [E]
    property_starts: np.ndarray  # [C, P]
    n_concepts: int  # pretraining concepts
    vocab_size: int

    @property
    def n_entities(self) -> int:
        return self.memory.shape[0]

    @property
    def n_properties(self) -> int:
        return self.memory.shape[1]

    def concepts(self, split: str) -> np.ndarray:
        total = len(self.property_transitions)
        return np.arange(self.n_concepts) if split == "in_distribution" else np.arange(self.n_concepts, total)


def family(spec: dict) -> Family:
    """Draw the HMM family of a corpus spec (n_entities, n_properties, vocab_size, n_concepts, n_heldout_concepts, seed)."""
    rng = generator(spec, "family")
    e, p = spec["n_entities"], spec["n_properties"]
    memory = rng.integers(1, spec["vocab_size"], size=(e, p))
    memory[:, 0] = DELIMITER
    entity = STICKINESS * np.eye(e) + (1 - STICKINESS) * mix_of_permutations(rng, e)
    total = spec["n_concepts"] + spec["n_heldout_concepts"]
    properties = np.stack([mix_of_permutations(rng, p) for _ in range(total)])
    starts = np.stack([near_uniform(rng, p) for _ in range(total)])
    return Family(memory, entity, properties, near_uniform(rng, e), starts, spec["n_concepts"], spec["vocab_size"])


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row of probabilities [N, n]."""
    cumulative = probabilities.cumsum(-1)
    return np.minimum((cumulative < rng.uniform(size=(len(probabilities), 1)) * cumulative[:, -1:]).sum(-1), probabilities.shape[1] - 1)


def sample_chains(fam: Family, rng: np.random.Generator, concepts: np.ndarray, length: int, entities=None, properties=None):
    """Hidden chains of `length` states, one per entry of `concepts`, from the given start states (else
    drawn from the start distributions). Returns entities and properties, each [N, length]."""
    concepts = np.asarray(concepts)
    v = _draw(rng, np.broadcast_to(fam.entity_start, (len(concepts), fam.n_entities))) if entities is None else np.asarray(entities)
    s = _draw(rng, fam.property_starts[concepts]) if properties is None else np.asarray(properties)
    vs, ss = [v], [s]
    for _ in range(length - 1):
        v = _draw(rng, fam.entity_transition[v])
        s = _draw(rng, fam.property_transitions[concepts, s])
        vs.append(v)
        ss.append(s)
    return np.stack(vs, 1), np.stack(ss, 1)


def corpus(spec: dict, fam: Family) -> dict:
    """The pretraining documents: tokens [documents, document_length] and each document's concept."""
    rng = generator(spec, "corpus")
    concepts = rng.integers(0, fam.n_concepts, size=spec["documents"])
    entities, properties = sample_chains(fam, rng, concepts, spec["document_length"])
    return {"tokens": fam.memory[entities, properties], "concept": concepts}


# --- exact inference: the forward algorithm over (entity, property) ---


def forward(fam: Family, x: np.ndarray, concept: int, s0: int):
    """Forward pass for sequences x [N, T] under one concept, starting at (uniform entity, s0).

    Returns the log-likelihood of each x [N] and the next token's distribution [N, vocab] given x
    (zeros where x is impossible).
    """
    x = np.atleast_2d(x)
    n, length = x.shape
    states = fam.n_entities * fam.n_properties  # state (v, s) is index v * P + s
    transition = np.kron(fam.entity_transition, fam.property_transitions[concept])  # the independent chains together
    emits = fam.memory.reshape(-1)[None, :] == x[:, :, None]  # [N, T, states]
    alpha = np.zeros((n, fam.n_entities, fam.n_properties))
    alpha[:, :, s0] = 1.0 / fam.n_entities
    alpha = alpha.reshape(n, states)
    log_likelihood = np.zeros(n)
    for t in range(length):
        if t:
            alpha = alpha @ transition
        alpha = alpha * emits[:, t]
        total = alpha.sum(1)
        with np.errstate(divide="ignore"):
            log_likelihood += np.log(total)
        alpha = alpha / np.where(total > 0, total, 1.0)[:, None]
    emission = np.eye(fam.vocab_size)[fam.memory.reshape(-1)]  # [states, vocab]: the token each state emits
    return log_likelihood, alpha @ transition @ emission


def label(fam: Family, x: np.ndarray, concept: int, s0: int) -> np.ndarray:
    """The label of each x [N, T]: the most probable next token (the smallest id on a tie)."""
    return forward(fam, x, concept, s0)[1].argmax(-1)


def prompt_set(fam: Family, rng: np.random.Generator, split: str, k: int, example_length: int, count: int) -> dict:
    """`count` prompts of k examples and a test example of L = example_length tokens (x: L-1 tokens, then
    its label), each example but the test followed by the delimiter.

    Returns tokens [count, k (L + 1) + L - 1], the test labels, the Bayes-optimal predictions, and each
    prompt's concept and start property.
    """
    pool = fam.concepts(split)
    concepts = pool[rng.integers(0, len(pool), size=count)]
    starts = rng.integers(1, fam.n_properties, size=count)
    xs = []
    for _ in range(k + 1):
        entities = rng.integers(0, fam.n_entities, size=count)
        v, s = sample_chains(fam, rng, concepts, example_length - 1, entities=entities, properties=starts)
        xs.append(fam.memory[v, s])
    hypotheses, log_likelihoods, labellings = _hypotheses(fam, split, np.stack(xs))
    truth = [hypotheses.index((c, s0)) for c, s0 in zip(concepts.tolist(), starts.tolist())]
    labels = labellings[truth, :, np.arange(count)]  # [count, k + 1]: the true hypothesis labels every x
    delimiter = np.full((count, 1), DELIMITER)
    parts = [piece for i in range(k) for piece in (xs[i], labels[:, i : i + 1], delimiter)] + [xs[k]]
    return {
        "tokens": np.concatenate(parts, axis=1),
        "label": labels[:, k],
        "bayes": bayes_prediction(fam, log_likelihoods, labellings, labels[:, :k].T),
        "concept": concepts,
        "start": starts,
    }


def _hypotheses(fam: Family, split: str, xs: np.ndarray):
    """Every (concept, s0) of the split, with the log-likelihood [H, k + 1, N] and the label [H, k + 1, N]
    it gives each x of xs [k + 1, N, L - 1]."""
    hypotheses = [(c, s0) for c in fam.concepts(split).tolist() for s0 in range(1, fam.n_properties)]
    flat = xs.reshape(-1, xs.shape[-1])
    log_likelihoods, labellings = [], []
    for c, s0 in hypotheses:
        log_likelihood, next_token = forward(fam, flat, c, s0)
        log_likelihoods.append(log_likelihood.reshape(xs.shape[:2]))
        labellings.append(next_token.argmax(-1).reshape(xs.shape[:2]))
    return hypotheses, np.stack(log_likelihoods), np.stack(labellings)


def bayes_prediction(fam: Family, log_likelihoods: np.ndarray, labellings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The Bayes-optimal test label of each prompt.

    Hypotheses h (uniform a priori) give log-likelihoods [H, k + 1, N] and labels [H, k + 1, N] to the
    examples' x and the test x (last); `labels` [k, N] are the prompt's answers. A hypothesis's log
    posterior adds the log-likelihood of every x and is -inf if it labels any example otherwise; the
    prediction maximises the posterior mass of the test labels the hypotheses give.
    """
    k, count = labels.shape
    log_posterior = log_likelihoods.sum(1)
    log_posterior[(labellings[:, :k] != labels[None]).any(1)] = -np.inf
    weights = np.exp(log_posterior - log_posterior.max(0))  # the true hypothesis keeps every prompt's maximum finite
    votes = np.zeros((count, fam.vocab_size))
    for weight, test_label in zip(weights, labellings[:, k]):
        votes[np.arange(count), test_label] += weight
    return votes.argmax(-1)


def prompt_sets(spec: dict, fam: Family) -> list[dict]:
    """Every prompt set of the spec: in and out of distribution, for each k and example length."""
    sets = []
    for split in ("in_distribution", "out_of_distribution"):
        for length in spec["example_lengths"]:
            for k in spec["k"]:
                rng = generator(spec, f"prompts-{split}-{k}-{length}")
                prompts = prompt_set(fam, rng, split, k, length, spec["prompts"])
                sets.append({"split": split, "k": k, "example_length": length} | {key: torch.from_numpy(value) for key, value in prompts.items()})
    return sets


def corpus_file(spec: dict) -> dict:
    """The corpus file's content: the documents, their concepts and the memory matrix, as tensors."""
    fam = family(spec)
    documents = corpus(spec, fam)
    return {
        "tokens": torch.from_numpy(documents["tokens"].astype(np.int16)),
        "concept": torch.from_numpy(documents["concept"]),
        "memory": torch.from_numpy(fam.memory),
        "spec": spec,
    }


def prompts_file(spec: dict) -> dict:
    """The prompts file's content: every prompt set, with its labels and Bayes-optimal predictions."""
    return {"sets": prompt_sets(spec, family(spec)), "spec": spec}


def save(content: dict, path) -> None:
    checked.save(content, path)


def load(path) -> dict:
    return checked.load(path, remedy=REBUILD)
