"""Benchmark: mlp_names' training loop against the original notebook's loop and a plain torch.nn version.

Run from the repository root:  python bench/benchmark.py  [--quick] [--steps N] [--repeats K]
                                [--threads T] [--data PATH] [--json PATH] [--with-plain] [--check]

Every (variant, repeat) runs in its own child process (this script with the hidden `--one VARIANT`),
so runs cannot warm up or slow down one another and each child's peak RSS belongs to one variant.
Children are interleaved A, B, C, A, B, C, ... so drifts in machine load hit every variant alike.
See bench/README.md for how to read the output.
"""
from __future__ import annotations
import argparse, json, math, os, platform, resource, shutil, statistics, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

BLOCK_SIZE, BATCH_SIZE, LR = 3, 64, 1e-3
INIT_SEED, SPLIT_SEED = 2147483647, 42
RESULT_TAG = 'BENCH_RESULT '        # marks the child's one JSON line on stdout

# name used on the command line -> label in the table; 'original' is the baseline of "vs original"
VARIANTS = {'mlp_names': 'mlp_names', 'original': 'original loop', 'torch_nn': 'torch.nn',
            'plain': 'mlp_names plain', 'nudged': 'mlp_names nudged'}
TARGETS = {'vs_original': 0.33, 'vs_torch_nn': 0.8, 'sampling_s': 0.5, 'constrained_sampling_s': 1.0, 'scoring_s': 1.0,
           'plain_val_diff': 1e-3}


def peak_rss_mib() -> float:
    "Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == 'darwin' else rss / 2**10


def load_splits(data_path: str):
    "Words plus train/val tensors, made by mlp_names exactly as its own training makes them."
    from mlp_names.files import load_words
    from mlp_names.dataset import split_words, build_dataset
    from mlp_names.vocab import Vocab
    words = load_words(data_path)
    vocab = Vocab.from_words(words)
    tr, va, _ = split_words(words, SPLIT_SEED)
    return words, vocab, build_dataset(tr, vocab, BLOCK_SIZE), build_dataset(va, vocab, BLOCK_SIZE)


# ---------------------------------------------------------------------------------------------
# (2) The original notebook, transcribed from shared/bench/seed_reference.py. It is the baseline:
# keep it exactly as slow as the original (retain_grad everywhere, per-parameter Adam ops,
# `param.data = ...`, one .item() per parameter per step for the update ratios).
# ---------------------------------------------------------------------------------------------
class OriginalLinear:
    def __init__(self, fan_in, fan_out, generator, bias=True):
        self.weight = torch.randn((fan_in, fan_out), generator=generator) / (fan_in**0.5)
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None: self.out += self.bias
        return self.out

    def parameters(self): return [self.weight] + ([] if self.bias is None else [self.bias])


class OriginalBatchNorm1d:
    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma, self.beta = torch.ones(dim), torch.zeros(dim)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x):
        if self.training: xmean, xvar = x.mean(0, keepdim=True), x.var(0, keepdim=True)
        else: xmean, xvar = self.running_mean, self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return self.out

    def parameters(self): return [self.gamma, self.beta]


class OriginalLeakyRelu:
    def __call__(self, x):
        self.out = F.leaky_relu(x)
        return self.out

    def parameters(self): return []


class OriginalAdam:
    "The notebook's Adam: one set of small tensor ops per parameter, results rebound to param.data."
    def __init__(self, params, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08):
        self.lr, self.params = lr, params
        self.beta1, self.beta2, self.eps = torch.tensor(beta1), torch.tensor(beta2), eps
        self.m_d = {id(p): torch.zeros_like(p) for p in params}
        self.v_d = {id(p): torch.zeros_like(p) for p in params}
        self.t = 1

    def step(self):
        for param in self.params:
            grad, m, v = param.grad, self.m_d[id(param)], self.v_d[id(param)]
            next_m = torch.multiply(self.beta1, m) + torch.multiply(1.0 - self.beta1, grad)
            next_v = torch.multiply(self.beta2, v) + torch.multiply(1.0 - self.beta2, torch.pow(grad, 2))
            m_hat = torch.divide(next_m, 1 - torch.pow(self.beta1, self.t))
            v_hat = torch.divide(next_v, 1 - torch.pow(self.beta2, self.t))
            param.data = param.data - torch.divide(torch.multiply(self.lr, m_hat), torch.sqrt(v_hat) + self.eps)
            self.m_d[id(param)], self.v_d[id(param)] = next_m, next_v
        self.t += 1


def original_build(vocab_size: int, g: torch.Generator):
    "Embedding table C and the layer list, drawn from `g` in the notebook's order."
    n_embd, n_hidden = 10, 100
    C = torch.randn((vocab_size, n_embd), generator=g)
    layers = [OriginalLinear(n_embd * BLOCK_SIZE, n_hidden, g), OriginalBatchNorm1d(n_hidden), OriginalLeakyRelu()]
    for _ in range(4):
        layers += [OriginalLinear(n_hidden, n_hidden, g), OriginalBatchNorm1d(n_hidden), OriginalLeakyRelu()]
    layers += [OriginalLinear(n_hidden, vocab_size, g), OriginalBatchNorm1d(vocab_size)]
    with torch.no_grad():
        layers[-1].gamma *= 0.1
        for layer in layers[:-1]:
            if isinstance(layer, OriginalLinear): layer.weight *= math.sqrt(2 / (1 + 0.01**2))
    return C, layers


@torch.no_grad()
def original_split_loss(C, layers, X, Y) -> float:
    for layer in layers:
        if isinstance(layer, OriginalBatchNorm1d): layer.training = False
    x = C[X].view(X.shape[0], -1)
    for layer in layers: x = layer(x)
    return F.cross_entropy(x, Y).item()


def original_run(steps: int, data_path: str) -> dict:
    words, vocab, (Xtr, Ytr), (Xva, Yva) = load_splits(data_path)
    g = torch.Generator().manual_seed(INIT_SEED)
    C, layers = original_build(len(vocab), g)
    parameters = [C] + [p for layer in layers for p in layer.parameters()]
    for p in parameters: p.requires_grad_()
    opt = OriginalAdam(parameters, lr=LR)
    ud = []
    t0 = time.perf_counter()                      # only the training loop is timed
    for _ in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (BATCH_SIZE,), generator=g)
        Xb, Yb = Xtr[ix], Ytr[ix]
        x = C[Xb].view(BATCH_SIZE, -1)
        for layer in layers: x = layer(x)
        loss = F.cross_entropy(x, Yb)
        for layer in layers: layer.out.retain_grad()
        for p in parameters: p.grad = None
        loss.backward()
        opt.step()
        with torch.no_grad():
            ud.append([(LR * p.grad.std() / p.data.std()).log10().item() for p in parameters])
    dt = time.perf_counter() - t0
    rss = peak_rss_mib()                          # before the full-split evaluation (see README)
    return {'loop_s': dt, 'ms_per_step': 1000 * dt / steps, 'peak_rss_mib': rss,
            'train': original_split_loss(C, layers, Xtr, Ytr), 'val': original_split_loss(C, layers, Xva, Yva)}


# ---------------------------------------------------------------------------------------------
# (3) The same architecture in torch.nn + torch.optim.Adam, as shared/bench/torch_nn_baseline.py.
# ---------------------------------------------------------------------------------------------
def torch_nn_run(steps: int, data_path: str) -> dict:
    import torch.nn as nn
    words, vocab, (Xtr, Ytr), (Xva, Yva) = load_splits(data_path)
    V, E, H = len(vocab), 10, 100
    torch.manual_seed(INIT_SEED)
    mods = [nn.Embedding(V, E), nn.Flatten(), nn.Linear(E * BLOCK_SIZE, H), nn.BatchNorm1d(H), nn.LeakyReLU()]
    for _ in range(4): mods += [nn.Linear(H, H), nn.BatchNorm1d(H), nn.LeakyReLU()]
    mods += [nn.Linear(H, V), nn.BatchNorm1d(V)]
    model = nn.Sequential(*mods)
    with torch.no_grad(): model[-1].weight *= 0.1
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(42)
    t0 = time.perf_counter()                      # only the training loop is timed
    for _ in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (BATCH_SIZE,), generator=g)
        loss = F.cross_entropy(model(Xtr[ix]), Ytr[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    rss = peak_rss_mib()
    model.eval()
    with torch.no_grad():
        tr, va = F.cross_entropy(model(Xtr), Ytr).item(), F.cross_entropy(model(Xva), Yva).item()
    return {'loop_s': dt, 'ms_per_step': 1000 * dt / steps, 'peak_rss_mib': rss, 'train': tr, 'val': va}


# ---------------------------------------------------------------------------------------------
# (1) / (4) The project's own training: the step by hand (default) or through autograd.
# ---------------------------------------------------------------------------------------------
def mlp_names_run(steps: int, threads: int, data_path: str, autograd: bool, do_sample: bool, nudge: bool = False) -> dict:
    from mlp_names.files import load_words
    from mlp_names.train import TrainConfig, RecordUpdateRatios, new_run, fit, evaluate
    from mlp_names.sampling import Sampler, sample as sample_names, score
    from mlp_names.dataset import split_words
    words = load_words(data_path)
    config = TrainConfig(max_steps=steps, threads=threads, autograd=autograd)
    run = new_run(config, words)                  # model/optimizer setup is outside the timing, as for the others
    if nudge:  # the noise floor of "final val loss": move one weight by one float32 ulp and train the same way
        with torch.no_grad():
            w = run.model[5].weight
            w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(float('inf')))
    def sample(model, vocab, **kw): return sample_names(Sampler(model, vocab, config.block_size), **kw)
    t0 = time.perf_counter()
    fit(run, *run.splits(words)['train'], steps, [RecordUpdateRatios()])   # update-ratio history stays on (ud_every)
    call_s = time.perf_counter() - t0
    rss = peak_rss_mib()
    assert run.step == steps, f'train stopped at step {run.step}, expected {steps}'
    # the timed call above also built the train/val/test tensors (run.splits); the other
    # variants build theirs outside their timed loop. So time that same call here and subtract it.
    t0 = time.perf_counter()
    splits = run.splits(words)
    data_s = time.perf_counter() - t0
    loop_s = max(call_s - data_s, 0.0)
    out = {'loop_s': loop_s, 'ms_per_step': 1000 * loop_s / steps, 'train_call_s': call_s, 'data_s': data_s,
           'peak_rss_mib': rss, 'train': evaluate(run.model, *splits['train']),
           'val': evaluate(run.model, *splits['val'])}
    if do_sample:
        sample(run.model, run.vocab, n=10000, seed=0)          # warm-up call, not counted
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            sample(run.model, run.vocab, n=10000, seed=0)
            times.append(time.perf_counter() - t0)
        out['sampling_s'] = statistics.median(times)
        # what `mlp-names sample -n 10000 --prefix a --min-len 5 --novel --unique` and `mlp-names score` do
        train_words, val_words, _ = split_words(words, config.split_seed)
        train_set = set(train_words)
        def constrained(): sample(run.model, run.vocab, n=10000, seed=0, prefix='a', min_len=5, exclude=train_set, unique=True)
        def scoring(): score(run, words[:10000], reference=val_words)
        for key, job in (('constrained_sampling_s', constrained), ('scoring_s', scoring)):
            job()                                              # warm-up call, not counted
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                job()
                times.append(time.perf_counter() - t0)
            out[key] = statistics.median(times)
    return out



# ---------------------------------------------------------------------------------------------
# (5) The deeper model: chapter 05a's `dropout` preset (288,689 parameters, `best` until a bigger one) at --deeper-threads threads, our step
# (by hand and through autograd) against its torch.nn twin (eager, bfloat16 autocast, torch.compile) and the
# floor of its 12 matrix products. Every variant trains the same tree from the same data, WARMUP steps untimed.
# ---------------------------------------------------------------------------------------------
DEEPER_VARIANTS = {'best': 'mlp_names best', 'best_bf16': 'mlp_names best, --bf16', 'best_autograd': 'mlp_names best, autograd',
                   'best_nn': 'torch.nn eager', 'best_nn_bf16mm': 'torch.nn eager, bf16 products',
                   'best_nn_bf16': 'torch.nn + bf16 autocast', 'best_nn_compile': 'torch.nn + torch.compile',
                   'mm_fp32': 'matmul floor, float32 (torch.mm)', 'mm_fp32_fastest': 'matmul floor, float32 (faster library)',
                   'mm_bf16': 'matmul floor, bfloat16'}
BF16_VARIANTS = {'best_bf16', 'best_nn_bf16mm'}  # bfloat16 products (chapter 03b's `matmul_precision`): where the CPU has them
WARMUP = 50


def best_config(steps: int, threads: int, **kw):
    from mlp_names.deeper import preset
    return preset('dropout', max_steps=WARMUP + steps, threads=threads, **kw)  # the 288,689-parameter tree


def deeper_data(data_path: str, block_size: int):
    from mlp_names.files import load_words, build_dataset_fast
    from mlp_names.dataset import split_words
    from mlp_names.vocab import Vocab
    words = load_words(data_path)
    vocab = Vocab.from_words(words)
    return words, vocab, [build_dataset_fast(ws, vocab, block_size) for ws in split_words(words, SPLIT_SEED)[:2]]


def deeper_ours(steps: int, threads: int, data_path: str, autograd: bool = False, profile: bool = False, bf16: bool = False) -> dict:
    from mlp_names.files import load_words
    from mlp_names.train import new_run, fit, evaluate
    words = load_words(data_path)
    cfg = best_config(steps, threads, autograd=autograd, bf16=bf16)
    run = new_run(cfg, words)
    (Xtr, Ytr), (Xva, Yva), _ = run.splits(words).values()
    fit(run, Xtr, Ytr, WARMUP)
    t0 = time.perf_counter()
    fit(run, Xtr, Ytr, WARMUP + steps)
    dt = time.perf_counter() - t0
    out = {'loop_s': dt, 'ms_per_step': 1000 * dt / steps, 'peak_rss_mib': peak_rss_mib(),
           'train': evaluate(run.model, Xtr, Ytr), 'val': evaluate(run.model, Xva, Yva)}
    if profile: out['profile'] = profile_step(run, Xtr, Ytr)
    return out


# what each ATen operation of a step is, for the profile's breakdown
OP_KINDS = {'matrix products': ('mm', 'addmm', 'bmm', 'matmul', 'linear', '_linear_pointwise'),  # the last: oneDNN's
            'reductions': ('sum', 'mean', 'var', 'var_mean', 'std', 'norm', 'max', 'amax', 'logsumexp'),
            'random draws': ('bernoulli', 'bernoulli_', 'rand', 'uniform_', 'randint', 'random_', 'multinomial'),
            'embedding and indexing': ('index', 'index_add_', 'index_select', 'embedding', 'embedding_dense_backward',
                                       'scatter_add_', 'gather', 'index_put_', 'take')}


def op_kind(name: str) -> str:
    op = name.split('::')[-1]
    for kind, ops in OP_KINDS.items():
        if op in ops: return kind
    return 'elementwise and other'


def profile_step(run, X, Y, steps: int = 100) -> dict:
    "Self CPU time of each kind of ATen (and oneDNN) operation over `steps` steps of `run`, in ms per step."
    from torch.profiler import ProfilerActivity, profile
    from mlp_names.train import fit
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(run, X, Y, run.step + steps)
    kinds, ops = {}, {}
    for e in prof.key_averages():
        if not e.key.startswith(('aten::', 'mkldnn::')) or e.self_cpu_time_total <= 0: continue  # mkldnn: oneDNN's products
        ms = e.self_cpu_time_total / 1000 / steps
        kinds[op_kind(e.key)] = kinds.get(op_kind(e.key), 0.0) + ms
        ops[e.key] = ops.get(e.key, 0.0) + ms
    top = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:12])
    return {'kinds_ms': kinds, 'top_ops_ms': top}


def best_torch_nn(vocab_size: int, cfg):
    "The torch.nn twin of chapter 05a's tree: the same layers and sizes, the same initialisation rules."
    import torch.nn as nn
    class FlattenConsecutive(nn.Module):
        def __init__(self, n): super().__init__(); self.n = n
        def forward(self, x): return x.reshape(-1, self.n * x.shape[-1])
    E, H, width = cfg.n_embd, cfg.n_hidden, cfg.n_embd
    mods = [nn.Embedding(vocab_size, E)]
    for _ in range(cfg.n_layers):
        mods += [FlattenConsecutive(cfg.merge), nn.Linear(width * cfg.merge, H), nn.BatchNorm1d(H), nn.LeakyReLU(),
                 nn.Dropout(cfg.dropout)]
        width = H
    mods += [nn.Linear(H, vocab_size), nn.BatchNorm1d(vocab_size)]
    model = nn.Sequential(*mods)
    with torch.no_grad(): model[-1].weight *= 0.1
    return model


def deeper_torch_nn(steps: int, threads: int, data_path: str, mode: str) -> dict:
    if mode == 'bf16mm': torch.set_float32_matmul_precision('medium')  # float32 products from bfloat16, as --bf16
    cfg = best_config(steps, threads)
    words, vocab, ((Xtr, Ytr), (Xva, Yva)) = deeper_data(data_path, cfg.block_size)
    torch.manual_seed(cfg.init_seed)
    model = best_torch_nn(len(vocab), cfg)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{'params': decay}, {'params': rest, 'weight_decay': 0.0}], lr=cfg.lr, weight_decay=cfg.weight_decay)
    net = torch.compile(model) if mode == 'compile' else model
    g = torch.Generator().manual_seed(42)
    def step(t):
        for group in opt.param_groups: group['lr'] = cfg.lr_at(t)
        ix = torch.randint(0, Xtr.shape[0], (cfg.batch_size,), generator=g)
        if mode == 'bf16':
            with torch.autocast('cpu', dtype=torch.bfloat16): loss = F.cross_entropy(net(Xtr[ix]), Ytr[ix])
        else: loss = F.cross_entropy(net(Xtr[ix]), Ytr[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t0 = time.perf_counter()
    for t in range(WARMUP): step(t)
    warm_s = time.perf_counter() - t0              # with torch.compile: the compilation
    t0 = time.perf_counter()
    for t in range(WARMUP, WARMUP + steps): step(t)
    dt = time.perf_counter() - t0
    rss = peak_rss_mib()
    model.eval()
    with torch.no_grad():
        tr = sum(F.cross_entropy(model(Xtr[i:i + 4096]), Ytr[i:i + 4096], reduction='sum').item() for i in range(0, len(Xtr), 4096)) / len(Xtr)
        va = sum(F.cross_entropy(model(Xva[i:i + 4096]), Yva[i:i + 4096], reduction='sum').item() for i in range(0, len(Xva), 4096)) / len(Xva)
    return {'loop_s': dt, 'ms_per_step': 1000 * dt / steps, 'warmup_s': warm_s, 'peak_rss_mib': rss, 'train': tr, 'val': va}


def onednn_mm():
    "a·b through oneDNN's float32 kernels (torch's `_linear_pointwise`), or None where torch has no oneDNN."
    lp = getattr(torch.ops.mkldnn, '_linear_pointwise', None) if torch.backends.mkldnn.is_available() else None
    return None if lp is None else (lambda a, b: lp(a, b.t(), None, 'none', [], ''))


def deeper_matmul_floor(steps: int, threads: int, dtype, fastest: bool = False) -> dict:
    """The 12 matrix products of one step of the tree (forward, weight and input gradients), in `dtype`, alone: through
    torch.mm, or with `fastest` each through whichever of torch.mm (MKL) and oneDNN is faster for it here."""
    cfg = best_config(steps, threads)
    B, E, H, V, m = cfg.batch_size, cfg.n_embd, cfg.n_hidden, 27, cfg.merge
    shapes, rows, width = [], B * cfg.block_size // m, E * m      # (rows, in, out) of each Linear
    for _ in range(cfg.n_layers):
        shapes.append((rows, width, H)); rows, width = rows // m, H * m
    shapes.append((B, H, V))
    g = torch.Generator().manual_seed(0)
    mats = [(torch.randn(r, i, generator=g).to(dtype), torch.randn(i, o, generator=g).to(dtype), torch.randn(r, o, generator=g).to(dtype))
            for r, i, o in shapes]
    products = [(a, b, torch.mm) for x, w, d in mats for a, b in ((x, w), (x.t(), d), (d, w.t()))]
    if fastest and (dnn := onednn_mm()) is not None:
        def us(f, a, b, n=50):
            for _ in range(10): f(a, b)
            t0 = time.perf_counter()
            for _ in range(n): f(a, b)
            return time.perf_counter() - t0
        products = [(a, b, min((torch.mm, dnn), key=lambda f: us(f, a, b))) for a, b, _ in products]
    def one():
        for a, b, f in products: f(a, b)
    for _ in range(WARMUP): one()
    t0 = time.perf_counter()
    for _ in range(steps): one()
    dt = time.perf_counter() - t0
    return {'loop_s': dt, 'ms_per_step': 1000 * dt / steps, 'peak_rss_mib': peak_rss_mib(), 'train': float('nan'), 'val': float('nan')}


def deeper_child(v: str, steps: int, threads: int, data_path: str, profile: bool) -> dict:
    if v == 'best': return deeper_ours(steps, threads, data_path, profile=profile)
    if v == 'best_bf16': return deeper_ours(steps, threads, data_path, bf16=True)
    if v == 'best_autograd': return deeper_ours(steps, threads, data_path, autograd=True)
    if v.startswith('best_nn'):
        return deeper_torch_nn(steps, threads, data_path, {'best_nn': 'eager', 'best_nn_bf16mm': 'bf16mm', 'best_nn_bf16': 'bf16',
                                                             'best_nn_compile': 'compile'}[v])
    return deeper_matmul_floor(steps, threads, torch.bfloat16 if v == 'mm_bf16' else torch.float32, fastest=(v == 'mm_fp32_fastest'))


def child_main(args) -> None:
    "Run one variant once and print its result as one tagged JSON line on stdout."
    torch.set_num_threads(args.threads)
    v = args.one
    if v in DEEPER_VARIANTS: res = deeper_child(v, args.steps, args.threads, args.data, profile=args.sample)
    elif v == 'original': res = original_run(args.steps, args.data)
    elif v == 'torch_nn': res = torch_nn_run(args.steps, args.data)
    else: res = mlp_names_run(args.steps, args.threads, args.data, autograd=(v == 'plain'), do_sample=args.sample,
                              nudge=(v == 'nudged'))
    res.update(variant=v, steps=args.steps, threads=torch.get_num_threads(), torch=torch.__version__,
               peak_rss_mib_end=peak_rss_mib())
    print(RESULT_TAG + json.dumps(res), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent: launch the children interleaved, aggregate, print the table.
# ---------------------------------------------------------------------------------------------
def run_child(variant: str, args, data_path: str, sample: bool, steps: int | None = None, threads: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), '--one', variant, '--steps', str(steps or args.steps),
           '--threads', str(threads or args.threads), '--data', data_path] + (['--sample'] if sample else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)     # the child's stderr goes straight through
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout)
        raise RuntimeError(f'benchmark child {variant!r} failed (exit code {proc.returncode})')
    return json.loads(lines[-1][len(RESULT_TAG):])


def cpu_name() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine() or 'unknown CPU'



DEEPER_TARGETS = {'best/torch_nn': 0.5, 'best/matmul_fp32': 1.5, 'original/torch_nn': 0.5}


def deeper_section(args, data_path: str) -> dict:
    "Time every deeper variant, interleaved over the repeats, in fresh processes; print the table and the profile."
    from mlp_names.fused import bf16_supported
    variants = [v for v in DEEPER_VARIANTS if (v != 'best_nn_compile' or shutil.which('cc') or shutil.which('gcc'))
                and (v not in BF16_VARIANTS or bf16_supported())]
    print(f'deeper model: {", ".join(variants)}; {args.deeper_steps} steps x {args.repeats} repeats, threads '
          f'{args.deeper_threads}', file=sys.stderr, flush=True)
    runs = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants:
            if v == 'best_nn_compile' and r > 0: continue  # minutes of compiling: one run
            res = run_child(v, args, data_path, sample=(v == 'best' and r == 0), steps=args.deeper_steps, threads=args.deeper_threads)
            runs[v].append(res)
            print(f"[{r + 1}/{args.repeats}] {DEEPER_VARIANTS[v]:<26} {res['ms_per_step']:7.3f} ms/step  val {res['val']:.4f}",
                  file=sys.stderr, flush=True)
    ms = {v: statistics.median(x['ms_per_step'] for x in rs) for v, rs in runs.items()}
    nn = ms['best_nn']
    print(f"\nthe deeper model: chapter 05a's `dropout` preset (288,689 parameters, batch 256), {args.deeper_threads} threads, "
          f"{args.deeper_steps} steps after {WARMUP} untimed, median of {args.repeats}")
    print('| variant | ms/step | vs torch.nn eager |\n|---|--:|--:|')
    for v in variants:
        note = f" (compiling: {runs[v][0]['warmup_s']:.0f} s, not counted)" if v == 'best_nn_compile' else ''
        print(f"| {DEEPER_VARIANTS[v]}{note} | {ms[v]:.2f} | {ms[v] / nn:.2f} |")
    prof = runs['best'][0]['profile']
    total = sum(prof['kinds_ms'].values())
    print(f"\nwhere a step of mlp_names best goes (torch.profiler, self CPU time of ATen and oneDNN operations, 100 steps, "
          f"{total:.2f} ms a step in all):")
    for kind, t in sorted(prof['kinds_ms'].items(), key=lambda kv: -kv[1]): print(f"  {kind:24s} {t:6.2f} ms  {t / total:5.1%}")
    print('  largest operations: ' + ', '.join(f"{k.split('::')[-1]} {t:.2f}" for k, t in prof['top_ops_ms'].items()))
    ours = [v for v in ('best', 'best_bf16') if v in ms]
    floor = min(('mm_fp32', 'mm_fp32_fastest'), key=lambda v: ms.get(v, float('inf')))  # the float32 products' least time
    ratios = {f'{v}/{base}': ms[v] / ms[ref] for v in ours for base, ref in (('torch_nn', 'best_nn'), ('torch_nn_bf16', 'best_nn_bf16'),
                                                                          ('matmul_fp32', floor), ('matmul_fp32_mm', 'mm_fp32'))}
    for v in ours:
        print(f"\n{DEEPER_VARIANTS[v]}:")
        print(f"  ratio / torch.nn eager float32:   {ratios[f'{v}/torch_nn']:.3f}  (target <= {DEEPER_TARGETS['best/torch_nn']})")
        print(f"  ratio / torch.nn + bf16 autocast: {ratios[f'{v}/torch_nn_bf16']:.3f}  (target < 1)")
        print(f"  ratio / float32 matmul floor:     {ratios[f'{v}/matmul_fp32']:.3f}  (target <= {DEEPER_TARGETS['best/matmul_fp32']}; "
              f"the faster of the two floors; {ratios[f'{v}/matmul_fp32_mm']:.3f} of torch.mm's)")
    fastest = min(ours, key=ms.get)  # the targets hold for ours if the fastest way mlp_names trains the model meets them
    print(f"targets judged on the fastest of ours: {DEEPER_VARIANTS[fastest]}")
    failed = [name for name, ok in (('best / torch.nn', ratios[f'{fastest}/torch_nn'] <= DEEPER_TARGETS['best/torch_nn']),
                                    ('best / torch.nn bf16', ratios[f'{fastest}/torch_nn_bf16'] < 1),
                                    ('best / matmul floor', ratios[f'{fastest}/matmul_fp32'] <= DEEPER_TARGETS['best/matmul_fp32'])) if not ok]
    return {'ms_per_step': ms, 'ratios': ratios, 'profile': prof, 'runs': runs, 'failed': failed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Time mlp_names training against the original loop and torch.nn.')
    p.add_argument('--steps', type=int, default=20000, help='training steps per run (default 20000)')
    p.add_argument('--repeats', type=int, default=3, help='runs of each variant, interleaved (default 3)')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads for every run (default 1)')
    p.add_argument('--data', default=None, help='names file (default: data/names.txt as mlp_names finds it)')
    p.add_argument('--json', default=None, help='also write all results to this JSON file')
    p.add_argument('--quick', action='store_true', help='smoke run: --steps 2000 --repeats 1')
    p.add_argument('--with-plain', action='store_true', help='also time mlp_names with autograd=True')
    p.add_argument('--check', action='store_true', help='exit 1 if a target is missed')
    p.add_argument('--deeper-steps', type=int, default=1500, help="timed steps of each deeper-model run (default 1500)")
    p.add_argument('--deeper-threads', type=int, default=2, help='threads of the deeper-model runs (default 2)')
    p.add_argument('--no-deeper', action='store_true', help="skip the deeper model (chapter 05a's best preset)")
    p.add_argument('--one', choices=list(VARIANTS) + list(DEEPER_VARIANTS), help=argparse.SUPPRESS)     # child mode
    p.add_argument('--sample', action='store_true', help=argparse.SUPPRESS)     # child also times sampling
    args = p.parse_args(argv)
    if args.quick: args.steps, args.repeats, args.deeper_steps = 2000, 1, 200
    if args.steps < 1 or args.repeats < 1 or args.threads < 1:
        p.error('--steps, --repeats and --threads must be at least 1')
    if args.one:
        child_main(args)
        return 0

    from mlp_names.files import names_path
    # resolve the data once so that every child reads the same file, wherever it is started from
    data_path = str(Path(args.data).resolve() if args.data else names_path().resolve())
    variants = ['mlp_names', 'original', 'torch_nn'] + (['plain', 'nudged'] if args.with_plain else [])
    print(f'benchmark: {", ".join(variants)}; {args.steps} steps x {args.repeats} repeats, '
          f'threads {args.threads}, data {data_path}', file=sys.stderr, flush=True)

    runs = {v: [] for v in variants}
    t_start = time.perf_counter()
    for r in range(args.repeats):
        for v in variants:
            if v in ('plain', 'nudged') and r > 0: continue  # deterministic losses: one run each is enough
            t0 = time.perf_counter()
            res = run_child(v, args, data_path, sample=(v == 'mlp_names' and r == 0))
            res['repeat'] = r
            runs[v].append(res)
            extra = f" sampling {res['sampling_s']:.3f} s" if 'sampling_s' in res else ''
            print(f"[{r + 1}/{args.repeats}] {VARIANTS[v]:<15} {res['ms_per_step']:7.3f} ms/step  "
                  f"train {res['train']:.4f}  val {res['val']:.4f}  peak RSS {res['peak_rss_mib']:.0f} MiB"
                  f"{extra}  ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)

    # aggregate: median time over repeats; losses from the first repeat (same seeds -> same losses);
    # peak RSS is the largest over the repeats (each one a fresh process)
    summary = {}
    for v in variants:
        rs = runs[v]
        vals = [x['val'] for x in rs]
        if max(vals) - min(vals) > 1e-6:
            print(f'warning: {VARIANTS[v]} val loss differs between repeats: {vals}', file=sys.stderr)
        summary[v] = {'ms_per_step': statistics.median(x['ms_per_step'] for x in rs),
                      'ms_per_step_all': [x['ms_per_step'] for x in rs],
                      'train': rs[0]['train'], 'val': rs[0]['val'],
                      'peak_rss_mib': max(x['peak_rss_mib'] for x in rs)}
    base = summary['original']['ms_per_step']
    vs_orig = summary['mlp_names']['ms_per_step'] / base
    vs_nn = summary['mlp_names']['ms_per_step'] / summary['torch_nn']['ms_per_step']
    sampling_s = runs['mlp_names'][0]['sampling_s']
    constrained_s, scoring_s = runs['mlp_names'][0]['constrained_sampling_s'], runs['mlp_names'][0]['scoring_s']
    plain_diff = abs(summary['mlp_names']['val'] - summary['plain']['val']) if 'plain' in summary else None

    first = runs['mlp_names'][0]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {first['torch']}, threads {args.threads}")
    print(f'steps {args.steps}, repeats {args.repeats} (interleaved), median ms/step')
    print()
    print('| variant          | ms/step | vs original | train | val   | peak RSS MiB |')
    print('|------------------|--------:|------------:|------:|------:|-------------:|')
    for v in variants:
        s = summary[v]
        print(f"| {VARIANTS[v]:<16} | {s['ms_per_step']:7.2f} | {s['ms_per_step'] / base:11.2f} | "
              f"{s['train']:.3f} | {s['val']:.3f} | {s['peak_rss_mib']:12.0f} |")
    print()
    print(f"ratio mlp_names / original loop: {vs_orig:.3f}  (target <= {TARGETS['vs_original']})")
    print(f"ratio mlp_names / torch.nn:      {vs_nn:.3f}  (required <= {TARGETS['vs_torch_nn']}, goal 0.5)")
    if plain_diff is None: print('fast vs plain: (skip; run with --with-plain)')
    else:
        print(f"fast vs plain: |val difference| {plain_diff:.2e} (target < {TARGETS['plain_val_diff']:g}), "
              f"plain {summary['plain']['ms_per_step']:.2f} ms/step, "
              f"by hand/autograd {summary['mlp_names']['ms_per_step'] / summary['plain']['ms_per_step']:.2f}")
        nudge_diff = abs(summary['mlp_names']['val'] - summary['nudged']['val'])
        print(f"noise floor: one weight moved by 1 ulp before training changes the final val loss by {nudge_diff:.2e}")
    print(f"sampling 10,000 names: {sampling_s:.3f} s (target < {TARGETS['sampling_s']} s)")
    print(f"sampling 10,000 names with prefix, min length, novel and unique: {constrained_s:.3f} s "
          f"(target < {TARGETS['constrained_sampling_s']} s)")
    print(f"scoring 10,000 names against the validation names: {scoring_s:.3f} s (target < {TARGETS['scoring_s']} s)")
    print(f'(mlp_names: ms/step excludes the {first["data_s"]:.2f} s train() spends building its datasets; '
          f'total wall time {time.perf_counter() - t_start:.0f} s)', file=sys.stderr)

    failed = []
    if vs_orig > TARGETS['vs_original']: failed.append('mlp_names / original loop')
    if vs_nn > TARGETS['vs_torch_nn']: failed.append('mlp_names / torch.nn')
    if vs_nn > DEEPER_TARGETS['original/torch_nn']: failed.append(f"mlp_names / torch.nn above {DEEPER_TARGETS['original/torch_nn']}")
    if not sampling_s < TARGETS['sampling_s']: failed.append('sampling time')
    if not constrained_s < TARGETS['constrained_sampling_s']: failed.append('constrained sampling time')
    if not scoring_s < TARGETS['scoring_s']: failed.append('scoring time')
    if plain_diff is not None and not plain_diff < TARGETS['plain_val_diff']: failed.append('by hand vs autograd val')

    deeper = None if args.no_deeper else deeper_section(args, data_path)
    if deeper: failed += deeper['failed']

    if args.json:
        report = {'deeper': deeper, 'machine': {'cpu': cpu_name(), 'cores': os.cpu_count(), 'torch': first['torch'],
                              'python': platform.python_version(), 'platform': platform.platform()},
                  'settings': {'steps': args.steps, 'repeats': args.repeats, 'threads': args.threads,
                               'data': data_path, 'with_plain': args.with_plain},
                  'summary': summary, 'ratios': {'mlp_names/original': vs_orig, 'mlp_names/torch_nn': vs_nn},
                  'sampling_s': sampling_s, 'constrained_sampling_s': constrained_s, 'scoring_s': scoring_s,
                  'plain_val_diff': plain_diff, 'targets': TARGETS,
                  'failed_targets': failed, 'runs': runs}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + '\n')
        print(f'results written to {args.json}', file=sys.stderr)

    if args.check and failed:
        print(f"targets missed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
