"""The fast path (chapter 03b) on the deeper models of chapter 05a: the units it makes, its numbers against the layers
one by one, the masks dropout draws, and resume bit for bit in float32."""
import pytest
import torch
from fastcore.test import test_close as close_to

from mlp_names import fused
from mlp_names.backward import cross_entropy_with_grad
from mlp_names.deeper import Dropout, FlattenConsecutive, build_tree, preset
from mlp_names.files import load_words, names_path
from mlp_names.layers import Linear
from mlp_names.runs import continue_run, start_run
from mlp_names.vocab import Vocab

SMALL = dict(block_size=8, merge=2, n_layers=3, n_embd=16, n_hidden=64, batch_size=256, max_steps=60, lr=2e-3,
             weight_decay=0.1, dropout=0.2, ud_every=10)   # a first level of 1,024 x 64 numbers: fused


def small_tree(dtype=torch.float32, **kw):
    vocab = Vocab.from_words(load_words(names_path())[:2000])
    model = build_tree(preset('dropout', **{**SMALL, **kw}), vocab)
    for layer in model:
        if isinstance(layer, Dropout): layer.generator = torch.Generator().manual_seed(7)
        for name, t in layer.named_tensors().items(): setattr(layer, name, t.detach().to(dtype).requires_grad_(t.requires_grad))
    return model


def test_the_tree_is_fused_into_a_lookup_block_and_hidden_blocks():
    units = fused.fuse_layers(small_tree().layers)
    assert [type(u).__name__ for u in units] == ['LookupBlock', 'HiddenBlock', 'HiddenBlock', 'NormedLinear']
    assert [type(u.masker).__name__ for u in units if isinstance(u, fused.HiddenBlock)] == ['Dropout'] * 3
    assert [type(u.merge).__name__ for u in units[1:3]] == ['FlattenConsecutive'] * 2   # each merge inside its block
    assert FlattenConsecutive.concatenates_positions and units[0].positions == 2


def test_fused_gradients_equal_the_layers_in_float64():
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randint(1, 27, (256, 8), generator=g), torch.randint(0, 27, (256,), generator=g)
    grads = []
    for fuse in (False, True):
        model = small_tree(torch.float64)
        units = fused.fuse_layers(model.layers) if fuse else model.layers
        with torch.no_grad():
            x = X
            for u in units: x = u.forward_for_backward(x)
            d = cross_entropy_with_grad(x, Y)[1]
            for u in reversed(units): d = u.backward(d)
        grads.append([p.grad for p in model.parameters()])
    scale = max(a.abs().max().item() for a in grads[0])
    assert max((a - b).abs().max().item() for a, b in zip(*grads)) / scale < 1e-12


def test_a_bias_before_batchnorm_gets_its_exact_gradient_zero():
    model = small_tree()
    step = fused.FusedStep(model)
    g = torch.Generator().manual_seed(1)
    step(torch.randint(1, 27, (256, 8), generator=g), torch.randint(0, 27, (256,), generator=g))
    hidden = [l for l in model.layers if isinstance(l, Linear)][:-1]   # the last Linear's BatchNorm is not fused
    assert all(torch.equal(l.bias.grad, torch.zeros_like(l.bias)) for l in hidden)
    assert model.layers[-2].bias.grad.abs().max() < 1e-6             # the layers' own: rounding noise around zero


def test_dropout_keeps_a_share_of_k_over_256_and_scales_by_its_inverse():
    for p, kept in ((0.2, 205), (0.3, 179), (0.5, 128)):
        d = Dropout(p, torch.Generator().manual_seed(3))
        assert d.kept == kept and d.scale == 256 / kept
        m = d.keep((2000, 1000))
        share, sigma = m.mean().item(), (kept / 256 * (1 - kept / 256) / m.numel()) ** 0.5
        close_to(share, kept / 256, eps=4 * sigma)
        assert set(m.unique().tolist()) == {0.0, 1.0}
        assert abs(share - (1 - p)) < 1 / 512 + 4 * sigma


def test_fused_float32_run_resumes_bit_for_bit(tmp_path):
    straight = start_run(tmp_path / 'straight', preset('dropout', **SMALL), names_path(), quiet=True)
    start_run(tmp_path / 'halves', preset('dropout', **{**SMALL, 'max_steps': 30}), names_path(), quiet=True)
    resumed = continue_run(tmp_path / 'halves', 60, data=names_path(), quiet=True)
    assert type(resumed.step_fn).__name__ == 'FusedStep'
    assert list(straight.history['loss']) == list(resumed.history['loss'])
    assert all(torch.equal(p, q) for p, q in zip(straight.model.parameters(), resumed.model.parameters()))


def test_the_output_layer_unit_equals_its_two_layers_bit_for_bit():
    g = torch.Generator().manual_seed(4)
    x, dout = torch.randn(256, 64, generator=g), torch.randn(256, 27, generator=g)
    twins = [fused.fast_forms(small_tree().layers[-2:]) for _ in range(2)]  # the same weights: the tree's Linear
    # and BatchNorm1d, with the forms the step gives them
    unit, layers = fused.NormedLinear(*twins[0]), twins[1]
    for _ in range(2):                                            # the second step through the buffers of the first
        with torch.no_grad():
            out, dx = unit.forward_for_backward(x), unit.backward(dout.clone())
            ref = x
            for layer in layers: ref = layer.forward_for_backward(ref)
            dref = dout.clone()
            for layer in reversed(layers): dref = layer.backward(dref)
        assert torch.equal(out, ref) and torch.equal(dx, dref)
        assert all(torch.equal(p.grad, q.grad) for p, q in zip(twins[0][0].parameters() + twins[0][1].parameters(),
                                                                twins[1][0].parameters() + twins[1][1].parameters()))
        assert torch.equal(twins[0][1].running_var, twins[1][1].running_var)


def test_dropout_draws_its_bits_into_one_buffer_and_they_are_the_generators_next():
    d = Dropout(0.2, torch.Generator().manual_seed(5))
    first = d.keep((100, 30)).clone()
    buffer = d._bits
    second = d.keep((100, 30))
    assert d._bits is buffer and len(buffer) == (3000 + 7) // 8   # made once, drawn into again
    g = torch.Generator().manual_seed(5)                           # the same numbers as fresh draws of the generator
    for mask in (first, second):
        bits = torch.randint(-2**63, 2**63 - 1, ((3000 + 7) // 8,), generator=g, dtype=torch.int64)
        assert torch.equal(mask, (bits.view(torch.uint8)[:3000].view(100, 30) < d.kept).float())


def test_flat_adamw_decays_the_matrices_only_as_theta_minus_lr_lambda_theta():
    from mlp_names.deeper import FlatAdamW
    g = torch.Generator().manual_seed(3)
    shapes = [(5,), (4, 3), (2, 6), (7,), (3, 3), (2,)]          # matrices side by side, and one alone
    params = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    before = [p.detach().clone() for p in params]
    opt = FlatAdamW(params, lr=0.05, weight_decay=0.3)
    assert [len(run) for run in opt.decayed] == [12 + 12, 9]       # two runs of matrices in the flat buffer
    opt.flat_grad.zero_()                                          # no gradient: Adam's update is 0, only the decay moves
    opt.step()
    for p, b in zip(params, before):
        expected = b - b * (0.05 * 0.3) if b.ndim == 2 else b       # θ - lr·λ·θ, rounded the same: product then sum
        assert torch.equal(p.detach(), expected), p.shape


has_onednn = pytest.mark.skipif(fused._onednn_linear is None, reason='this torch has no oneDNN')


def test_onednn_takes_the_big_products_on_amd_cpus_with_avx512_only():
    assert fused.onednn_pays('AuthenticAMD', 'fpu sse2 avx2 avx512f avx512bw avx512_bf16')
    assert not fused.onednn_pays('AuthenticAMD', 'fpu sse2 avx2 fma')             # AVX2 alone: the two were as fast
    assert not fused.onednn_pays('GenuineIntel', 'fpu avx2 avx512f amx_bf16')     # MKL's own: left as it was
    assert not fused.onednn_pays('', '')                                           # no /proc/cpuinfo


@has_onednn
def test_products_through_onednn_are_float32_products_and_small_ones_stay_with_torch_mm(monkeypatch):
    g = torch.Generator().manual_seed(6)
    x, w, dh = (torch.randn(*s, generator=g) for s in [(512, 512), (512, 256), (512, 256)])
    monkeypatch.setattr(fused, 'ONEDNN_PRODUCTS', True)
    for a, b in [(x, w), (x.t(), dh), (dh, w.t())]:               # forward, weight gradient, input gradient
        assert fused.through_onednn(a, b)
        got, exact = fused.product(a, b, torch.empty(a.shape[0], b.shape[1])), a.double() @ b.double()
        assert (got - exact).abs().max() <= 2e-6 * exact.abs().max()  # float32's rounding over 512 terms
    small, out = torch.randn(64, 100, generator=g), torch.empty(64, 27)
    assert not fused.through_onednn(small, w[:100, :27]) and fused.product(small, w[:100, :27], out) is out
    assert not fused.through_onednn(x[:, :256].t(), dh[:, :128])   # 2^25 multiply-adds read across rows: below its mark
    assert fused.through_onednn(x[:, :256].contiguous(), w[:256, :64])   # 2^23 read along rows: at it
    monkeypatch.setattr(fused, 'ONEDNN_PRODUCTS', False)
    assert not fused.through_onednn(x, w) and torch.equal(fused.product(x, w, torch.empty(512, 256)), torch.mm(x, w))


@has_onednn
def test_a_run_with_onednn_products_resumes_bit_for_bit_and_trains_as_with_torch_mm(tmp_path, monkeypatch):
    wide = {**SMALL, 'n_hidden': 256}                 # the second level: 512 x 512 by 512 x 256, through oneDNN
    runs = {}
    for onednn in (False, True):
        monkeypatch.setattr(fused, 'ONEDNN_PRODUCTS', onednn)
        runs[onednn] = start_run(tmp_path / f'straight{onednn}', preset('dropout', **wide), names_path(), quiet=True)
    start_run(tmp_path / 'halves', preset('dropout', **{**wide, 'max_steps': 30}), names_path(), quiet=True)
    resumed = continue_run(tmp_path / 'halves', 60, data=names_path(), quiet=True)
    assert list(runs[True].history['loss']) == list(resumed.history['loss'])
    assert all(torch.equal(p, q) for p, q in zip(runs[True].model.parameters(), resumed.model.parameters()))
    mkl, dnn = (torch.tensor(runs[k].history['loss']) for k in (False, True))
    assert not torch.equal(mkl, dnn)                  # the other library's rounding: oneDNN did run
    assert (mkl - dnn).abs().max() < 2e-3, (mkl - dnn).abs().max()


def test_evaluation_folds_each_batchnorm_and_agrees_with_the_layers():
    """Chapter 04's `evaluate` runs chapter 03b's `eval_forward` (each BatchNorm folded into its
    Linear, dropout off): the mean loss of the layers' own eval mode, to float32 rounding, on a
    trained tree with dropout, and the model is left as it was."""
    from mlp_names.train import evaluate, fit, new_run
    words = load_words(names_path())
    run = new_run(preset('dropout', **SMALL), words)
    X, Y = run.splits(words)['val']
    fit(run, *run.splits(words)['train'], 60)
    before = [t.clone() for t in run.model.parameters()]
    with torch.no_grad():
        layers = torch.nn.functional.cross_entropy(run.model.eval()(X), Y).item()
    run.model.train()
    close_to(evaluate(run.model, X, Y), layers, eps=1e-5)
    assert run.model.training and all(torch.equal(p, q) for p, q in zip(before, run.model.parameters()))
