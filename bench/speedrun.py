"""Time to a target validation loss: the wall time of the whole `mlp-names train` process.

For each target, its plan (PLANS, bench/README.md) runs over several init seeds
(`--seed`; the split stays seed 42), with `--bf16` where torch uses bfloat16 instructions for float32
products (Intel's AMX or AVX-512 BF16); the script reports the mean and spread of the final val loss
and of the wall time, and how many seeds reached the target. `--ten-minutes` adds the best val in a
10-minute budget (`--minutes 10`, about 30 minutes for three seeds). `--peer` trains makemore part
5's model (the tree of chapter 05a with tanh, batch 32, SGD) in torch.nn as the peer baseline, up to
the first target or 200,000 steps, in its own process, and prints ours / peer.

    python bench/speedrun.py                       # the 1.9937 and 1.95 targets, 3 seeds
    python bench/speedrun.py --targets 1.9937 --peer
    python bench/speedrun.py --ten-minutes --json bench/results/speedrun.json
"""
from __future__ import annotations
import argparse, json, os, platform, random, re, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')

# target val loss -> the flags of `mlp-names train` to reach it (how they were chosen: bench/README.md)
PLANS = {
    1.9937: ['--preset', 'fast', '--threads', '2'],
    1.95: ['--preset', 'dropout', '--dropout', '0.125', '--weight-decay', '0.05', '--batch-size',
           '1024', '--steps', '2000', '--warmup', '150', '--lr', '2e-2', '--shuffle', '--threads', '2'],
}
TEN_MINUTES = ['--minutes', '10']  # no preset: the budget's own (chapter 05b), on 2 threads


def with_bf16(flags: list[str]) -> list[str]:
    "`flags` with `--bf16` where torch uses bfloat16 instructions for float32 products here."
    from mlp_names.fused import bf16_supported
    return flags + ['--bf16'] * bf16_supported()
SECTION = '\n## Speedrun'  # its section of bench/results.md (bench/results.py keeps it)


def cpu_name() -> str:
    "The processor's model name (Linux), else what platform says."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def one_run(flags: list[str], seed: int, data: Path) -> dict:
    "One `mlp-names train` process with `flags` and `--seed seed`, timed from outside."
    with tempfile.TemporaryDirectory() as d:
        cmd = [MLP_NAMES, 'train', '--run', str(Path(d) / 'run'), '--data', str(data), '--quiet',
               '--seed', str(seed), *flags]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise SystemExit(f'speedrun: {" ".join(cmd)} failed: {r.stderr.strip()}')
        config = json.loads((Path(d) / 'run' / 'run.json').read_text())['config']
    m = re.search(r'step (\d+): train loss ([\d.]+), val loss ([\d.]+)', r.stdout)
    # the steps of each member: the first's max_steps, the others' member_steps (0: the same)
    members = [config['max_steps']] + [config.get('member_steps') or config['max_steps']] * (
        config.get('members', 1) - 1)
    return {'seed': seed, 'wall_s': wall, 'steps': int(m.group(1)), 'member_steps': members,
            'train': float(m.group(2)), 'val': float(m.group(3))}


def summary(name: str, target: float | None, flags: list[str], runs: list[dict]) -> dict:
    vals, walls = [r['val'] for r in runs], [r['wall_s'] for r in runs]
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {'target': name, 'val_target': target, 'flags': ' '.join(flags), 'runs': runs,
            'val_mean': statistics.mean(vals), 'val_sd': spread(vals), 'val_max': max(vals),
            'wall_mean': statistics.mean(walls), 'wall_sd': spread(walls),
            'reached': sum(v <= target for v in vals) if target is not None else None}


def peer(data: Path, target: float, max_steps: int, every: int) -> None:
    "makemore part 5's model in torch.nn, until its val loss (every `every` steps) <= `target`."
    import torch, torch.nn as nn, torch.nn.functional as F
    torch.set_num_threads(int(os.environ.get('THREADS', '1')))
    words = data.read_text().split()
    chars = sorted(set(''.join(words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    T, V = 8, len(chars) + 1

    def build(ws):
        X, Y = [], []
        for w in ws:
            ctx = [0] * T
            for ch in w + '.':
                X.append(ctx); Y.append(stoi.get(ch, 0)); ctx = ctx[1:] + [stoi.get(ch, 0)]
        return torch.tensor(X), torch.tensor(Y)

    random.seed(42); random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    (Xtr, Ytr), (Xva, Yva) = build(words[:n1]), build(words[n1:n2])

    class Merge(nn.Module):  # FlattenConsecutive(2): (B, T, C) -> (B, T/2, 2C); a T of 1 is dropped
        def forward(self, x):
            B, t, C = x.shape
            x = x.reshape(B, t // 2, 2 * C)
            return x.squeeze(1) if x.shape[1] == 1 else x

    class BatchNormLast(nn.BatchNorm1d):  # statistics over all dimensions but the last
        def forward(self, x): return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    torch.manual_seed(42)
    E, H = 24, 128
    layers = [nn.Embedding(V, E)]
    for width in (2 * E, 2 * H, 2 * H):
        layers += [Merge(), nn.Linear(width, H, bias=False), BatchNormLast(H), nn.Tanh()]
    layers.append(nn.Linear(H, V))
    model = nn.Sequential(*layers)
    with torch.no_grad(): model[-1].weight *= 0.1
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    val, step = float('inf'), 0
    while step < max_steps:
        ix = torch.randint(0, len(Xtr), (32,))
        loss = F.cross_entropy(model(Xtr[ix]), Ytr[ix])
        for p in model.parameters(): p.grad = None
        loss.backward()
        opt.param_groups[0]['lr'] = 0.1 if step < 150_000 else 0.01
        opt.step()
        step += 1
        if step % every == 0 or step == max_steps:
            model.eval()
            with torch.no_grad(): val = F.cross_entropy(model(Xva), Yva).item()
            model.train()
            print(f'peer step {step}: val {val:.4f}', file=sys.stderr, flush=True)
            if val <= target: break
    print(json.dumps({'steps': step, 'val': val}))


def run_peer(data: Path, target: float, max_steps: int, every: int) -> dict:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, __file__, '--peer-child', '--data', str(data),
                        '--targets', str(target),
                        '--peer-steps', str(max_steps), '--peer-every', str(every)],
                       capture_output=True, text=True)
    if r.returncode != 0: raise SystemExit(f'speedrun: the peer failed: {r.stderr.strip()}')
    return {**json.loads(r.stdout.strip().splitlines()[-1]), 'wall_s': time.monotonic() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--targets', type=float, nargs='*', default=list(PLANS),
                    help='val losses (none given: only the --budgets)')
    ap.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3], help='init seeds (--seed)')
    ap.add_argument('--ten-minutes', action='store_true', help='also the best val in 10 minutes')
    ap.add_argument('--peer', action='store_true',
                    help="also makemore part 5's model in torch.nn, to the first target")
    ap.add_argument('--peer-steps', type=int, default=200_000)
    ap.add_argument('--peer-every', type=int, default=5_000,
                    help="the peer's val loss is checked every this many steps")
    ap.add_argument('--budgets', type=float, nargs='*', default=[], metavar='M',
                    help='also `mlp-names train --minutes M` for each M: its wall time against M')
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'names.txt')
    ap.add_argument('--json', type=Path, help='save every run and the summary here')
    ap.add_argument('--markdown', type=Path,
                    help="write the table as the '## Speedrun' section of this file "
                    '(bench/results.md), replacing that section and keeping what comes before it')
    ap.add_argument('--peer-child', action='store_true', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer_child:
        peer(args.data, args.targets[0], args.peer_steps, args.peer_every); return 0
    unknown = [t for t in args.targets if t not in PLANS]
    if unknown:
        raise SystemExit(f'speedrun: no plan for the targets {unknown}; choose from {list(PLANS)}')
    print(f'CPU: {cpu_name()}, {os.cpu_count()} logical cores; seeds {args.seeds}', flush=True)
    rows = []
    for target in args.targets:
        runs = []
        for seed in args.seeds:
            runs.append(one_run(with_bf16(PLANS[target]), seed, args.data))
            print(f'  {target}: seed {seed}: {runs[-1]}', file=sys.stderr, flush=True)
        rows.append(summary(f'val <= {target}', target, with_bf16(PLANS[target]), runs))
    kept = []  # how closely each budget is kept: the whole process, timed from outside
    for m in args.budgets:
        r = one_run(with_bf16(['--minutes', f'{m:g}']), args.seeds[0], args.data)  # the budget's preset
        kept.append(f"`--minutes {m:g}`: {r['wall_s']:.1f} s, {r['wall_s'] / (60 * m):.3f} of the "
                    f"budget ({r['steps']:,} steps, val {r['val']:.4f})")
        print(kept[-1], flush=True)
    if args.ten_minutes:
        runs = [one_run(with_bf16(TEN_MINUTES), seed, args.data) for seed in args.seeds]
        rows.append(summary('best val in 10 minutes', None, with_bf16(TEN_MINUTES), runs))
        for r in runs:  # each seed's budget kept, and the steps of its members
            kept.append(f"`--minutes 10`, seed {r['seed']}: {r['wall_s']:.1f} s, "
                        f"{r['wall_s'] / 600:.3f} of the budget (steps of the members "
                        f"{', '.join(f'{s:,}' for s in r['member_steps'])}; val {r['val']:.4f})")
            print(kept[-1], flush=True)
    lines = ['| target | flags | val (mean ± sd, worst) | reached | wall time (mean ± sd) |',
             '|---|---|--:|--:|--:|']
    for r in rows:
        reached = f"{r['reached']}/{len(r['runs'])}" if r['reached'] is not None else '-'
        lines.append(f"| {r['target']} | `{r['flags']}` | {r['val_mean']:.4f} ± {r['val_sd']:.4f}, "
                     f"{r['val_max']:.4f} | {reached} | "
                     f"{r['wall_mean']:.1f} ± {r['wall_sd']:.1f} s |")
    if kept:
        lines += [''] + [f'- {k}' for k in kept]
    result = {'cpu': cpu_name(), 'cores': os.cpu_count(), 'rows': rows, 'budgets': kept}
    if args.peer:
        p = run_peer(args.data, args.targets[0], args.peer_steps, args.peer_every)
        ours = rows[0]['wall_mean']
        lines += ['', "Peer, makemore part 5's model in torch.nn (SGD, batch 32, val checked every "
                  f"{args.peer_every:,} steps): val {p['val']:.4f} after {p['steps']:,} steps, "
                  f"{p['wall_s']:.1f} s; ours / peer to val <= {args.targets[0]}: "
                  f"{ours / p['wall_s']:.2f}"]
        result['peer'] = p
    print('\n'.join(lines))
    if args.markdown:
        old = args.markdown.read_text() if args.markdown.exists() else ''
        head, _, rest = old.partition(SECTION)
        tail = rest[rest.index('\n## '):] if '\n## ' in rest else ''  # the sections after it stay
        intro = (f'`python bench/speedrun.py`: {cpu_name()}, {os.cpu_count()} logical cores, '
                 f'init seeds {args.seeds}; wall time of the whole `mlp-names train` process.')
        args.markdown.write_text(head.rstrip('\n') + '\n' + SECTION + '\n\n' + intro + '\n\n'
                                 + '\n'.join(lines) + '\n' + tail)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
