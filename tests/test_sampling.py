"""Sampling controls and `score` beyond what chapter 06 shows: other block sizes, edge requests, streaming, memory.

Models here are untrained (`new_run` with 0 steps) or tiny hand-made ones, so that every test is quick; the
references are direct computations (a position-by-position loop, the definitions of the controls)."""
import math, subprocess, sys, tracemalloc
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mlp_names.layers import Embedding, Flatten, Linear, Sequential
from mlp_names.sampling import CHUNK, Sampler, iter_samples, next_char_probs, sample, score
from mlp_names.train import TrainConfig, build_model
from mlp_names.vocab import Vocab

VOCAB = Vocab(list('.abcdefghijklmnopqrstuvwxyz'))


def model_with(block_size: int, seed: int = 0, n_layers: int = 2):
    "An untrained model of the library's architecture (BatchNorm running stats perturbed so folding matters)."
    config = TrainConfig(block_size=block_size, n_layers=n_layers, n_hidden=32, init_seed=seed)
    model = build_model(config, VOCAB)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model:
            if hasattr(layer, 'running_mean'):
                layer.running_mean += 0.1 * torch.randn(layer.running_mean.shape, generator=g)
                layer.running_var *= 1 + 0.5 * torch.rand(layer.running_var.shape, generator=g)
    return model


def direct_nats(model, block_size, name):
    "Total nats of `name` + end token, one position at a time, the model in eval mode."
    was, total, ctx = model.training, 0.0, [0] * block_size
    model.eval()
    with torch.no_grad():
        for ix in VOCAB.encode(name) + [0]:
            total -= F.log_softmax(model(torch.tensor([ctx])).double(), 1)[0, ix].item()
            ctx = ctx[1:] + [ix]
    model.train(was)
    return total


@pytest.mark.parametrize('block_size', [1, 3, 8])
def test_score_matches_a_direct_loop(block_size):
    model = model_with(block_size)
    names = ['a', 'emma', 'zyxwvutsrq', '', 'abcdefghijkl']
    reference = ['anna', 'bob', 'kate', 'zz', 'mmmmmm', 'li']
    recs = score(Sampler(model, VOCAB, block_size), names, reference=reference)
    ref_pc = [direct_nats(model, block_size, w) / (len(w) + 1) for w in reference]
    for r, name in zip(recs, names):
        assert r['name'] == name
        assert math.isclose(r['nats'], direct_nats(model, block_size, name), rel_tol=1e-5)
        assert math.isclose(r['nats_per_char'], r['nats'] / (len(name) + 1), rel_tol=1e-12)
        assert r['percentile'] == pytest.approx(100 * sum(v > r['nats_per_char'] + 1e-9 for v in ref_pc) / len(ref_pc))
    assert model.training  # scoring leaves the model's mode alone


def test_score_edge_cases():
    model = model_with(3)
    assert score(Sampler(model, VOCAB, 3), []) == []
    assert score(Sampler(model, VOCAB, 3), ['ab'])[0]['percentile'] is None  # no reference, no percentile
    for bad, char in [('ab1', "'1'"), ('a b', "' '"), ('a.b', "'.'")]:
        with pytest.raises(ValueError, match=f"name '{bad}' has {char}"): score(Sampler(model, VOCAB, 3), [bad])


@pytest.mark.parametrize('block_size', [1, 3, 8])
def test_prefix_longer_than_the_context_conditions_on_its_last_letters(block_size):
    model = model_with(block_size, seed=1)
    prefix = 'abcdefghij'
    names = sample(Sampler(model, VOCAB, block_size), n=3000, seed=0, prefix=prefix, min_len=11, max_len=11)
    assert all(nm.startswith(prefix) and len(nm) == 11 for nm in names)
    ctx = ([0] * block_size + VOCAB.encode(prefix))[-block_size:]
    with torch.no_grad(): p = next_char_probs(model.eval()(torch.tensor([ctx])), can_end=False)[0]
    model.train()
    counts = torch.bincount(torch.tensor([VOCAB.stoi[nm[-1]] for nm in names]), minlength=len(VOCAB)).double()
    assert counts[0] == 0
    assert (counts / 3000 - p).abs().max() < 4 * math.sqrt(0.25 / 3000) + 1e-3


def test_length_edges():
    model = model_with(3)
    assert sample(Sampler(model, VOCAB, 3), n=5, prefix='abc', max_len=3) == ['abc'] * 5   # at max_len only the end is allowed
    assert all(len(nm) == 4 for nm in sample(Sampler(model, VOCAB, 3), n=200, min_len=4, max_len=4))
    assert sample(Sampler(model, VOCAB, 3), n=0) == []
    assert '' in sample(Sampler(model, VOCAB, 3), n=2000, min_len=0, max_len=1)          # untrained: the end is often drawn
    assert '' not in sample(Sampler(model, VOCAB, 3), n=2000, max_len=1)


def test_top_k_never_leaves_the_k_most_likely_on_a_known_model():
    V = len(VOCAB)
    logits = torch.randn(V, generator=torch.Generator().manual_seed(3))
    lin = Linear(2, V, generator=torch.Generator())
    lin.weight, lin.bias = torch.zeros(2, V), logits
    toy = Sequential([Embedding(V, 1, generator=torch.Generator()), Flatten(), lin])
    for k in (1, 2, 5):
        allowed = set(logits.topk(k).indices.tolist())
        for nm in sample(Sampler(toy, VOCAB, 2), n=300, seed=k, top_k=k, min_len=0, max_len=6):
            assert {VOCAB.stoi[c] for c in nm} <= allowed, (k, nm)


def test_exclude_unique_stream_lazily_and_give_up_with_a_count():
    model = model_with(3)
    it = iter_samples(Sampler(model, VOCAB, 3), n=10**9, seed=0, max_len=3, unique=True, max_tries=50_000)
    first = [next(it) for _ in range(100)]                     # a huge request still starts at once
    assert len(set(first)) == 100
    with pytest.raises(ValueError, match=r'found only \d[\d,]* of the 1,000 names asked for in 5 tries'):
        sample(Sampler(model, VOCAB, 3), n=1000, max_len=3, unique=True, max_tries=5)
    with pytest.raises(ValueError, match='max_tries must be a whole number'):
        iter_samples(Sampler(model, VOCAB, 3), max_tries=-1)
    excluded = set(sample(Sampler(model, VOCAB, 3), n=500, seed=1, max_len=2))
    assert not excluded & set(sample(Sampler(model, VOCAB, 3), n=500, seed=1, max_len=2, exclude=excluded))


def test_chunks_stay_bounded_in_memory():
    "Sampling 5 chunks takes about the memory of one (names are yielded, not collected)."
    model = model_with(3)
    it = iter_samples(Sampler(model, VOCAB, 3), n=5 * CHUNK, seed=0, max_len=12)
    tracemalloc.start()
    for _ in it: pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 2**20, peak


def test_sampling_does_not_change_the_model():
    model = model_with(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sample(Sampler(model, VOCAB, 3), n=100, prefix='ab', top_k=3)
    score(Sampler(model, VOCAB, 3), ['abc'], reference=['abd', 'x'])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training
