"""Adam's decay rates as settings (`beta1`, `beta2`, chapter 05a): unset, they are Adam's own
(0.9, 0.999); set, they reach every optimizer a config builds (the fused step's flat AdamW, AdamW
through autograd, Muon's AdamW part, the transformer's); out of bounds or on the bigram they are
refused in one line; and a run with them resumes bit for bit."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlp_names.deeper import ADAM_BETAS, DeeperConfig, build_tree, preset
from mlp_names.files import load_words
from mlp_names.ladder import TransformerConfig
from mlp_names.runs import load_run, save_run
from mlp_names.train import fit, new_run
from mlp_names.vocab import Vocab

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
NAMES = ROOT / 'data' / 'names.txt'
VOCAB = Vocab.from_words(load_words(NAMES))


def betas_of(optimizer) -> tuple[float, float]:
    return optimizer.beta1, optimizer.beta2


def test_adams_published_defaults_unless_set():
    "Kingma and Ba's β1 = 0.9, β2 = 0.999 (the defaults of torch.optim.Adam too)."
    assert ADAM_BETAS == (0.9, 0.999) == torch.optim.Adam([torch.zeros(1)]).defaults['betas']
    for kw in ({}, {'weight_decay': 0.1}, {'weight_decay': 0.1, 'autograd': True}):
        step = DeeperConfig(**kw).new_step(build_tree(DeeperConfig(), VOCAB))
        assert betas_of(step.optimizer) == ADAM_BETAS, kw


@pytest.mark.parametrize('kw', [{}, {'weight_decay': 0.1}, {'autograd': True},
                                {'weight_decay': 0.1, 'autograd': True}])
def test_betas_reach_the_optimizer(kw):
    config = DeeperConfig(beta1=0.8, beta2=0.9, **kw)
    assert betas_of(config.new_step(build_tree(config, VOCAB)).optimizer) == (0.8, 0.9)


def test_betas_reach_muons_adamw_and_the_transformers():
    config = DeeperConfig(muon=True, beta1=0.8, beta2=0.9)
    assert betas_of(config.new_step(build_tree(config, VOCAB)).optimizer.adam) == (0.8, 0.9)
    config = TransformerConfig(beta1=0.8)
    step = config.new_step(config.new_model(VOCAB, torch.Generator()))
    assert betas_of(step.optimizer) == (0.8, 0.99)  # its β2 default: makemore.py's


def test_fast_trains_with_shorter_memories():
    config = preset('fast')
    assert (config.beta1, config.beta2) == (0.8, 0.9)
    step = config.new_step(config.new_model(VOCAB, torch.Generator()))
    assert betas_of(step.optimizer) == (0.8, 0.9)
    assert (preset('best').beta1, preset('best').beta2) == ADAM_BETAS  # the long runs keep Adam's


@pytest.mark.parametrize('args, message', [
    (('--beta2', '1'), 'argument --beta2: must be at least 0 and at most 0.9999, got 1.0'),
    (('--beta1', '-0.1'), 'argument --beta1: must be at least 0 and at most 0.9999, got -0.1'),
    (('--model', 'bigram', '--beta1', '0.8'), '--beta1: not a setting of --model bigram'),
])
def test_bad_betas_are_refused_in_one_line(tmp_path, args, message):
    r = subprocess.run([MLP_NAMES, 'train', '--data', NAMES, '--run', tmp_path / 'r', *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (1, 2) and message in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path / 'r').exists()


def test_a_run_with_betas_resumes_bit_for_bit(tmp_path):
    "Saved at step 30 and loaded, it trains on to step 60 exactly as the run that never stopped."
    words = load_words(NAMES)
    config = DeeperConfig(beta1=0.8, beta2=0.9, max_steps=60, batch_size=32, n_hidden=32,
                          lr=1e-2, checkpoint_every=0)
    straight, stopped = new_run(config, words), new_run(config, words)
    X, Y = straight.splits(words)['train']
    fit(straight, X, Y, 60)
    fit(stopped, X, Y, 30)
    save_run(stopped, tmp_path)
    resumed = load_run(tmp_path)
    assert betas_of(resumed.step_fn.optimizer) == (0.8, 0.9)
    fit(resumed, X, Y, 60)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
