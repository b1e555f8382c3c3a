"""Matrix products from bfloat16 (`TrainConfig.bf16`, `mlp-names train --bf16`, chapter 03b): refused with the way
out on a CPU without the instructions, before anything is written; where the CPU has them, a run trains close to its
float32 twin, resumes bit for bit, and leaves torch's matmul precision as it found it."""
import pytest
import torch
from fastcore.test import test_close as close_to

from mlp_names import cli, fused
from mlp_names.deeper import build_tree, preset
from mlp_names.files import names_path, load_words
from mlp_names.runs import continue_run, load_run, start_run
from mlp_names.train import fit, new_run
from mlp_names.vocab import UserError, Vocab

SMALL = dict(block_size=8, merge=2, n_layers=3, n_embd=16, n_hidden=64, batch_size=256, max_steps=60, lr=2e-3,
             weight_decay=0.1, dropout=0.2, ud_every=10)   # blocks of 1,024 x 64 numbers: fused (chapter 03b)
has_bf16 = pytest.mark.skipif(not fused.bf16_supported(), reason='this CPU has no bfloat16 matrix instructions')


@pytest.fixture(scope='module')
def words(): return load_words(names_path())


def test_cli_refuses_bf16_without_the_instructions(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(fused, 'bf16_supported', lambda: False)
    assert cli.main(['train', '--bf16', '--run', str(tmp_path / 'r'), '--steps', '10', '--quiet']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--bf16 needs a CPU with bfloat16 matrix instructions' in err and 'train without it' in err
    assert not (tmp_path / 'r').exists()                       # refused before the run's directory was made


def test_fit_and_resume_refuse_bf16_without_the_instructions(monkeypatch, tmp_path, words):
    run = start_run(tmp_path / 'r', preset('original', max_steps=20, bf16=True), names_path(), quiet=True) \
        if fused.bf16_supported() else None
    monkeypatch.setattr(fused, 'bf16_supported', lambda: False)
    fresh = new_run(preset('original', bf16=True), words)
    X, Y = fresh.splits(words)['train']
    seen = []
    class Spy:
        def before_fit(self, run): seen.append('before_fit')
        def after_step(self, run, loss): pass
        def after_fit(self, run): seen.append('after_fit')
    with pytest.raises(UserError, match='TrainConfig.bf16 needs a CPU'): fit(fresh, X, Y, 10, [Spy()])
    assert fresh.step == 0 and seen == []                      # nothing started, nothing saved
    if run is not None:                                          # a run trained with bf16 cannot go on here
        before = (tmp_path / 'r' / 'run.pt').read_bytes()
        with pytest.raises(UserError, match='bf16'): continue_run(tmp_path / 'r', 40, data=names_path(), quiet=True)
        assert (tmp_path / 'r' / 'run.pt').read_bytes() == before and load_run(tmp_path / 'r').step == 20


@has_bf16
def test_bf16_trains_close_to_float32_and_restores_the_precision(words):
    runs = {}
    for bf16 in (False, True):
        run = new_run(preset('dropout', **SMALL, bf16=bf16), words)
        X, Y = run.splits(words)['train']
        fit(run, X, Y, 60)
        assert torch.get_float32_matmul_precision() == 'highest'
        runs[bf16] = run
    w32, w16 = (runs[b].model.layers[2].weight for b in (False, True))
    assert not torch.equal(w32, w16)                             # the products were rounded
    late = {b: sum(10 ** l for l in runs[b].history['loss'][-20:]) / 20 for b in runs}
    assert abs(late[True] - late[False]) < 0.05, late


@has_bf16
def test_bf16_resumes_bit_for_bit(tmp_path):
    straight = start_run(tmp_path / 'straight', preset('dropout', **SMALL, bf16=True), names_path(), quiet=True)
    start_run(tmp_path / 'halves', preset('dropout', **{**SMALL, 'max_steps': 30}, bf16=True), names_path(), quiet=True)
    resumed = continue_run(tmp_path / 'halves', 60, data=names_path(), quiet=True)
    assert list(straight.history['loss']) == list(resumed.history['loss'])
    assert all(torch.equal(p, q) for p, q in zip(straight.model.parameters(), resumed.model.parameters()))


@has_bf16
def test_bf16_keeps_the_small_products_float32_and_rounds_the_big_ones():
    vocab = Vocab.from_words(load_words(names_path())[:2000])
    X = torch.randint(1, 27, (256, 8), generator=torch.Generator().manual_seed(0))
    outs = {}
    for bf16 in (False, True):                   # the same weights both times, no dropout
        units = fused.fuse_layers(build_tree(preset('dropout', **{**SMALL, 'dropout': 0.0}), vocab).layers)
        with torch.no_grad(), fused.matmul_precision(bf16):
            x, outs[bf16] = X, []
            for unit in units[:2]: x = unit.forward_for_backward(x); outs[bf16].append(x.clone())
    (lookup32, hidden32), (lookup16, hidden16) = outs[False], outs[True]
    assert torch.equal(lookup32, lookup16)       # the first block's product is its tables: float32 under bf16 too
    assert not torch.equal(hidden32, hidden16)   # the next block's, over the batch: from bfloat16
    close_to(hidden16, hidden32, eps=0.05)       # an output of LeakyRelu(BatchNorm): of scale 1
    outs = {}
    for bf16 in (False, True):                   # the output layer, from the same input: logits, δx and δW float32
        unit = fused.fuse_layers(build_tree(preset('dropout', **{**SMALL, 'dropout': 0.0}), vocab).layers)[-1]
        g = torch.Generator().manual_seed(2)
        x, dout = torch.randn(256, 64, generator=g), torch.randn(256, 27, generator=g)
        with torch.no_grad(), fused.matmul_precision(bf16):
            outs[bf16] = [unit.forward_for_backward(x).clone(), unit.backward(dout).clone(), unit.linear.weight.grad.clone()]
    assert all(torch.equal(a, b) for a, b in zip(outs[False], outs[True]))


def test_bf16_supported_says_whether_products_round_to_bfloat16_here():
    "Against a product of random numbers under the precision `--bf16` sets: off by ~1e-3 where it rounds, ~1e-7 where not."
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(512, 512, generator=g), torch.randn(512, 256, generator=g)
    exact = x.double() @ w.double()
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision('medium')
        error = ((x @ w - exact).abs().max() / exact.abs().max()).item()
    finally: torch.set_float32_matmul_precision(before)
    assert (error > 1e-4) == fused.bf16_supported(), error
    assert error > 1e-4 or error < 2e-6                          # either bfloat16's rounding or float32's, nothing between
    assert torch.get_float32_matmul_precision() == before         # the probe left the precision as it found it
