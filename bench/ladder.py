"""The model ladder on two cores (chapter 06a): makemore.py's default transformer for 10,000 steps,
then every rung (bigram, the MLP presets original, tree, dropout, best; transformer) at budgets.

    python bench/ladder.py makemore --out ladder.jsonl        # the transformer as makemore.py trains it
    python bench/ladder.py budgets 1 2 5 10 --out ladder.jsonl  # every rung at each budget (minutes)
    python bench/ladder.py report ladder.jsonl --markdown bench/results.md --plot github_graphs/ladder.png
    python bench/ladder.py diagnostics     # the README's 2x2 of the original's graphs 1-4 (chapter 05)

A budget works as `mlp-names train --minutes M`: timed steps of a throwaway run fix the step count
(`budget_plan`), and the schedule (warm-up, cosine) ends at it. The wall time reported runs from
before that calibration to after the validation loss. Every measurement is one JSON line."""
import argparse, dataclasses, json, math, os, platform, subprocess, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlp_names.files import load_words  # noqa: E402
from mlp_names.vocab import UserError  # noqa: E402
from mlp_names.train import RecordUpdateRatios, fit, new_run  # noqa: E402
from mlp_names.deeper import preset  # noqa: E402
from mlp_names.runs import budget_plan  # noqa: E402
from mlp_names.ladder import BigramConfig, LadderRun, TransformerConfig  # noqa: E402

THREADS = 2
RUNGS = ('bigram', 'original', 'tree', 'dropout', 'best', 'transformer')


def machine() -> dict:
    cpu = next((l.split(':', 1)[1].strip() for l in subprocess.run(
        ['lscpu'], capture_output=True, text=True).stdout.splitlines()
        if l.startswith('Model name')), platform.processor())
    return {'cpu': cpu, 'load': os.getloadavg(), 'torch': torch.__version__}


def config_of(rung: str, **kw):
    "Each rung's settings at 2 threads: the presets as they are, makemore.py's transformer."
    if rung == 'bigram':
        return BigramConfig(threads=THREADS)
    if rung == 'transformer':
        return TransformerConfig(threads=THREADS, **kw)
    return preset(rung, threads=THREADS, **kw)


def _val(run: LadderRun, words) -> float:
    from mlp_names.train import Run, evaluate
    from mlp_names.ladder import whole_name_loss, whole_names
    X, Y = Run.splits(run, words)['val']
    if isinstance(run.config, TransformerConfig):
        return whole_name_loss(run.model, *whole_names(X, Y))
    return evaluate(run.model, X, Y)


def emit(out: Path, rec: dict) -> None:
    rec = {**rec, **machine(), 'time': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}
    print(json.dumps(rec), flush=True)
    with out.open('a') as f:
        f.write(json.dumps(rec) + '\n')


def makemore(words, out: Path, steps: int = 10_000, every: int = 1000, threads: int = THREADS) -> None:
    "The transformer as makemore.py's defaults train it; val every `every` steps (not timed)."
    run = LadderRun.of(new_run(TransformerConfig(threads=threads, max_steps=steps), words))
    X, Y = run.splits(words)['train']
    trained = 0.0
    while run.step < steps:
        t0 = time.perf_counter()
        fit(run, X, Y, min(steps, run.step + every))
        trained += time.perf_counter() - t0
        emit(out, {'kind': 'makemore', 'threads': threads, 'step': run.step, 'train_s': trained,
                   'val': _val(run, words)})


def budget(words, rung: str, minutes: float, out: Path) -> None:
    "One rung trained to a budget of `minutes`, as `--minutes` does."
    t0 = time.monotonic()
    if rung == 'bigram':  # counting: no steps to fit in a budget
        run = LadderRun.of(new_run(config_of(rung), words))
        run.step_fn(*run.splits(words)['train'])
        steps = 1
    else:
        kw = dict(warmup=200, cosine=True) if rung == 'transformer' else {}
        config = config_of(rung, **kw)
        # the steps that fit, as --minutes counts them; a warm-up longer than a tenth of them is
        # cut to that tenth (on a loaded machine a short budget may not hold the preset's 1,000)
        steps, _ = budget_plan(dataclasses.replace(config, warmup=0), words, minutes, t0, LadderRun.of)
        config = dataclasses.replace(config, max_steps=steps, warmup=min(config.warmup, steps // 10))
        run = LadderRun.of(new_run(config, words))
        X, Y = run.splits(words)['train']
        fit(run, X, Y, steps, [RecordUpdateRatios()])
    val = _val(run, words)
    emit(out, {'kind': 'budget', 'rung': rung, 'minutes': minutes, 'steps': steps, 'threads': THREADS,
               'warmup': getattr(run.config, 'warmup', 0),
               'wall_s': time.monotonic() - t0, 'val': val})


def _load_sentence(recs: list[dict]) -> str:
    "What the load average (1 min) says of the times: quiet, or shared with other jobs."
    low, high = min(r['load'][0] for r in recs), max(r['load'][0] for r in recs)
    if high <= 2.5:  # the run's own threads and the system: nothing else ran
        return (f'Nothing else ran: the load average (1 min) stayed between {low:.1f} and '
                f'{high:.1f} on the 2 cores.')
    return (f'The machine was shared with other jobs: the load average (1 min) ran from {low:.1f} '
            f'to {high:.1f} on its 2 cores, so the times are slower than on a quiet machine and '
            'the budgets bought fewer steps.')


def report(path: Path, markdown: Path | None, plot: Path | None) -> None:
    recs = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    mm = [r for r in recs if r['kind'] == 'makemore']
    last = {(r['rung'], r['minutes']): r for r in recs if r['kind'] in ('budget', 'refused')}
    bud = [r for r in last.values() if r['kind'] == 'budget']
    threads = sorted({r.get('threads', THREADS) for r in recs if r['kind'] != 'refused'})
    lines = ['## Ladder', '',
             'Chapter 06a\'s rungs on this split (`names.txt`, seed 42) on '
             f'{recs[0]["cpu"]} (torch {recs[0]["torch"]}), {"/".join(map(str, threads))} '
             'thread(s) as each row says; `python bench/ladder.py` (its docstring says how, '
             '`make ladder` runs it all). ' + _load_sentence(recs), '']
    if mm:
        end, best = mm[-1], min(mm, key=lambda r: r['val'])
        lines += ['makemore.py\'s default transformer (4 layers, 4 heads, n_embd 64, batch 32, '
                  'AdamW lr 5e-4, weight decay 0.01, betas (0.9, 0.99)), trained as makemore.py '
                  f'does, {end.get("threads", THREADS)} thread(s): val **{end["val"]:.4f}** at step '
                  f'{end["step"]:,} after {end["train_s"]:.0f} s of training (best '
                  f'{best["val"]:.4f} at step {best["step"]:,}); makemore.py itself: 2.017 at step '
                  '10,000 in 574 s.', '', '| step | val | training s |', '|---:|---:|---:|']
        lines += [f'| {r["step"]:,} | {r["val"]:.4f} | {r["train_s"]:.0f} |' for r in mm]
        lines.append('')
    if last:
        budgets = sorted({m for _, m in last})
        lines += ['Each rung at a budget of wall time (`--minutes`: the step count is measured '
                  'first, the schedule ends at it; the transformer with a warm-up of 200 steps '
                  '(at most a tenth of them) and a cosine; the presets as they are, a warm-up '
                  'longer than a tenth of the steps cut to that tenth). Val loss (steps, wall '
                  'seconds, threads); "refused": the budget held less than the calibration, the '
                  'evaluation and the save:', '',
                  '| rung | ' + ' | '.join(f'{m:g} min' for m in budgets) + ' |',
                  '|---|' + '---:|' * len(budgets)]
        for rung in RUNGS:
            cells = []
            for m in budgets:
                r = last.get((rung, m))
                cells.append('' if r is None else 'refused' if r['kind'] == 'refused' else
                             f'{r["val"]:.4f} ({r["steps"]:,}, {r["wall_s"]:.0f} s, '
                             f'{r.get("threads", THREADS)})')
            if any(cells):
                lines.append(f'| {rung} | ' + ' | '.join(cells) + ' |')
        lines += ['', 'The bigram is counted in one pass: the same val at every budget.']
        trained = [r for r in bud if r['rung'] != 'bigram']
        if trained:
            share = [r['wall_s'] / (60 * r['minutes']) for r in trained]
            lines += ['', f'Wall time against the budget, over the {len(share)} trained cells: from '
                      f'{min(share):.2f} to {max(share):.2f} (median '
                      f'{sorted(share)[len(share) // 2]:.2f}). The calibration times about a second '
                      'of steps; a step of the same run varies by more than that from one second to '
                      'the next on this machine.']
    text = '\n'.join(lines) + '\n'
    print(text)
    if markdown:
        old = markdown.read_text() if markdown.exists() else ''
        head = old.split('\n## Ladder\n')[0].rstrip('\n')
        markdown.write_text(head + '\n\n' + text)
    if plot and bud:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for rung in RUNGS:
            last = {r['minutes']: r for r in bud if r['rung'] == rung}  # a repeated budget: its last
            rs = sorted(last.values(), key=lambda r: r['wall_s'])
            if rung == 'bigram' and rs:
                ax.axhline(rs[0]['val'], color='gray', ls=':', label=f'bigram (counted, {rs[0]["wall_s"]:.0f} s)')
                continue
            if rs:
                ax.plot([r['wall_s'] for r in rs], [r['val'] for r in rs], 'o-', label=rung)
        if mm:
            ax.plot([r['train_s'] for r in mm], [r['val'] for r in mm], 'k.--',
                    label=f"transformer as makemore.py trains it, to step {mm[-1]['step']:,}")
        ax.set_xscale('log')
        from matplotlib.ticker import NullFormatter
        ticks = [15, 30, 60, 120, 300, 600]  # seconds: the budgets and halves of them
        ax.set_xticks(ticks, [f'{t} s' if t < 60 else f'{t // 60} min' for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        loads = [r['load'][0] for r in recs]
        ax.set_xlabel(f'wall time (log scale); load average {min(loads):.0f} to {max(loads):.0f} '
                      'on 2 cores')
        ax.set_ylabel('validation loss (nats per character)')
        ax.set_title('The ladder on names.txt: validation loss against wall time')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)


def diagnostics(out: Path = ROOT / 'github_graphs' / 'diagnostics.png') -> None:
    "Chapter 05's graphs 1-4 of the default run (activations, gradients, weight gradients, update ratios) as one 2x2."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(24, 8))  # each graph 1200 x 400
    for ax, i in zip(axes.flat, range(1, 5)):
        ax.imshow(plt.imread(ROOT / 'github_graphs' / f'graph{i}.png'))
        ax.axis('off')
    fig.subplots_adjust(left=0, right=1, top=1, bottom=0, wspace=0.01, hspace=0.01)
    fig.savefig(out, dpi=75)


def main():
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('what', choices=['makemore', 'budgets', 'report', 'diagnostics'])
    ap.add_argument('args', nargs='*')
    ap.add_argument('--out', type=Path, default=Path('ladder.jsonl'))
    ap.add_argument('--rungs', default=','.join(RUNGS))
    ap.add_argument('--threads', type=int, default=THREADS, help='makemore: torch threads')
    ap.add_argument('--every', type=int, default=1000, help='makemore: steps between two val losses')
    ap.add_argument('--markdown', type=Path)
    ap.add_argument('--plot', type=Path)
    a = ap.parse_args()
    if a.what == 'diagnostics':
        return diagnostics()
    if a.what == 'report':
        return report(Path(a.args[0]) if a.args else a.out, a.markdown, a.plot)
    words = load_words(ROOT / 'data' / 'names.txt')
    THREADS = a.threads
    if a.what == 'makemore':
        return makemore(words, a.out, every=a.every, threads=a.threads)
    for m in map(float, a.args or ['1', '2', '5', '10']):
        for rung in a.rungs.split(','):
            try:
                budget(words, rung, m, a.out)
            except UserError as e:  # the budget holds too few steps here: said, and recorded
                emit(a.out, {'kind': 'refused', 'rung': rung, 'minutes': m, 'threads': THREADS,
                             'why': str(e)})


if __name__ == '__main__':
    main()
