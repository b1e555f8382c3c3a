"""Benchmark: mlp_names' training loop against the original notebook's loop and a plain torch.nn version.

Run from the repository root:  python bench/benchmark.py  [--quick] [--steps N] [--repeats K]
                                [--threads T] [--data PATH] [--json PATH] [--with-plain] [--check]

Every (variant, repeat) runs in its own child process (this script with the hidden `--one VARIANT`),
so runs cannot warm up or slow down one another and each child's peak RSS belongs to one variant.
Children are interleaved A, B, C, A, B, C, ... so drifts in machine load hit every variant alike.
See bench/README.md for how to read the output.
"""
from __future__ import annotations
import argparse, json, math, os, platform, resource, statistics, subprocess, sys, time
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
# (1) / (4) The project's own training, fused (default) or plain autograd.
# ---------------------------------------------------------------------------------------------
def mlp_names_run(steps: int, threads: int, data_path: str, fused: bool, do_sample: bool, nudge: bool = False) -> dict:
    from mlp_names.files import load_words
    from mlp_names.train import TrainConfig, RecordUpdateRatios, new_run, fit, evaluate
    from mlp_names.sampling import sample as sample_names, score
    from mlp_names.dataset import split_words
    words = load_words(data_path)
    config = TrainConfig(max_steps=steps, threads=threads, fused=fused)
    run = new_run(config, words)                  # model/optimizer setup is outside the timing, as for the others
    if nudge:  # the noise floor of "final val loss": move one weight by one float32 ulp and train the same way
        with torch.no_grad():
            w = run.model[5].weight
            w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(float('inf')))
    def sample(model, vocab, **kw): return sample_names(model, vocab, config.block_size, **kw)
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
        def scoring(): score(run.model, run.vocab, config.block_size, words[:10000], reference=val_words)
        for key, job in (('constrained_sampling_s', constrained), ('scoring_s', scoring)):
            job()                                              # warm-up call, not counted
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                job()
                times.append(time.perf_counter() - t0)
            out[key] = statistics.median(times)
    return out


def child_main(args) -> None:
    "Run one variant once and print its result as one tagged JSON line on stdout."
    torch.set_num_threads(args.threads)
    v = args.one
    if v == 'original': res = original_run(args.steps, args.data)
    elif v == 'torch_nn': res = torch_nn_run(args.steps, args.data)
    else: res = mlp_names_run(args.steps, args.threads, args.data, fused=(v != 'plain'), do_sample=args.sample,
                              nudge=(v == 'nudged'))
    res.update(variant=v, steps=args.steps, threads=torch.get_num_threads(), torch=torch.__version__,
               peak_rss_mib_end=peak_rss_mib())
    print(RESULT_TAG + json.dumps(res), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent: launch the children interleaved, aggregate, print the table.
# ---------------------------------------------------------------------------------------------
def run_child(variant: str, args, data_path: str, sample: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), '--one', variant, '--steps', str(args.steps),
           '--threads', str(args.threads), '--data', data_path] + (['--sample'] if sample else [])
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



def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Time mlp_names training against the original loop and torch.nn.')
    p.add_argument('--steps', type=int, default=20000, help='training steps per run (default 20000)')
    p.add_argument('--repeats', type=int, default=3, help='runs of each variant, interleaved (default 3)')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads for every run (default 1)')
    p.add_argument('--data', default=None, help='names file (default: data/names.txt as mlp_names finds it)')
    p.add_argument('--json', default=None, help='also write all results to this JSON file')
    p.add_argument('--quick', action='store_true', help='smoke run: --steps 2000 --repeats 1')
    p.add_argument('--with-plain', action='store_true', help='also time mlp_names with fused=False')
    p.add_argument('--check', action='store_true', help='exit 1 if a target is missed')
    p.add_argument('--one', choices=list(VARIANTS), help=argparse.SUPPRESS)     # child mode
    p.add_argument('--sample', action='store_true', help=argparse.SUPPRESS)     # child also times sampling
    args = p.parse_args(argv)
    if args.quick: args.steps, args.repeats = 2000, 1
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
              f"fused/plain {summary['mlp_names']['ms_per_step'] / summary['plain']['ms_per_step']:.2f}")
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
    if not sampling_s < TARGETS['sampling_s']: failed.append('sampling time')
    if not constrained_s < TARGETS['constrained_sampling_s']: failed.append('constrained sampling time')
    if not scoring_s < TARGETS['scoring_s']: failed.append('scoring time')
    if plain_diff is not None and not plain_diff < TARGETS['plain_val_diff']: failed.append('fused vs plain val')

    if args.json:
        report = {'machine': {'cpu': cpu_name(), 'cores': os.cpu_count(), 'torch': first['torch'],
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
