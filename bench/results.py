"""Full runs of every preset of chapter 05a, each trained in a fresh process, with its learning curves.

Run from the repository root:  python bench/results.py [--presets original tree wide dropout best] [--data PATH]
                                [--samples 10000] [--keep DIR] [--markdown PATH] [--json PATH]

Each preset trains as `mlp-names train --preset NAME` does (the same settings, callbacks and checkpoints; the
original on 1 thread, the deeper ones on 2), in a child process that also evaluates the validation split every
1,000 steps (eval mode, the whole split), so that the run's train and val curves can be drawn: chapter 05a reads
them from the JSON file. For each preset: the wall time and peak RSS of that process, then its train / val / test
losses (the seed-42 split; only val is ever used to choose), its parameter count, and, for `--samples` names
sampled at temperature 1 (seed 0), the share that are words of its training split, the share that are new
(in none of the data's words) and the share that are distinct. Prints a markdown table (the README quotes it)
and a few names of each model.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path


def run_timed(cmd: list[str]) -> tuple[float, float]:
    "Run `cmd`; its wall time in seconds and its peak RSS in MiB (from wait4's rusage)."
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0: sys.exit(f'failed: {" ".join(cmd)}')
    return seconds, usage.ru_maxrss / 1024


EVAL_EVERY = 1000


def child(name: str, run_dir: str, data: str | None, curve_path: str) -> None:
    "Train preset `name` into `run_dir` as the command line does, recording the val loss every EVAL_EVERY steps."
    from mlp_names.deeper import preset
    from mlp_names.files import read_words, names_path
    from mlp_names.runs import job_callbacks, words_sha256
    from mlp_names.train import Callback, evaluate, fit, new_run
    path = Path(data).resolve() if data else names_path()
    words = read_words(path)
    run = new_run(preset(name, threads=1 if name == 'original' else 2), words, str(path), words_sha256(words))
    splits = run.splits(words)

    class ValCurve(Callback):
        def __init__(self): self.steps, self.val = [], []
        def after_step(self, run, loss):
            if run.step % EVAL_EVERY == 0:
                self.steps.append(run.step); self.val.append(evaluate(run.model, *splits['val'])); run.model.train()
    curve = ValCurve()
    fit(run, *splits['train'], run.config.max_steps, job_callbacks(run_dir, quiet=True) + [curve])
    Path(curve_path).write_text(json.dumps({'steps': curve.steps, 'val': curve.val}))


def measure(name: str, run_dir: Path, data: str | None, n_samples: int) -> dict:
    from mlp_names.dataset import split_words
    from mlp_names.runs import load_run, run_words
    from mlp_names.sampling import sample
    curve_path = run_dir.parent / f'{name}.curve.json'
    cmd = [sys.executable, __file__, '--child', name, str(run_dir), data or '', str(curve_path)]
    seconds, rss = run_timed(cmd)
    run = load_run(run_dir)
    curve = json.loads(curve_path.read_text())
    log_loss = run.history['loss']  # log10 of every step's batch loss: its mean per EVAL_EVERY steps, as a loss
    windows = [10 ** (sum(log_loss[i:i + EVAL_EVERY]) / EVAL_EVERY) for i in range(0, len(log_loss) - EVAL_EVERY + 1, EVAL_EVERY)]
    words = run_words(run)
    losses = run.losses(words)
    train_words = set(split_words(words, run.config.split_seed)[0])
    all_words = set(words)
    names = sample(run, n=n_samples, seed=0)
    return dict(preset=name, params=sum(p.numel() for p in run.model.parameters()), steps=run.step, threads=run.config.threads,
                curve={'steps': curve['steps'], 'val': [round(v, 4) for v in curve['val']], 'train_batches': [round(v, 4) for v in windows]},
                seconds=round(seconds, 1), peak_rss_mib=round(rss), **{k: round(v, 4) for k, v in losses.items()},
                in_training_set=round(sum(n in train_words for n in names) / len(names), 3),
                new=round(sum(n not in all_words for n in names) / len(names), 3),
                distinct=round(len(set(names)) / len(names), 3), examples=names[:12])


SPEEDRUN = '\n## Speedrun'  # where bench/speedrun.py's section starts


def markdown(rows: list[dict], n_samples: int) -> str:
    head = ('| preset | parameters | steps | train | val | test | wall time | peak RSS | '
            f'in training set | new | distinct ({n_samples:,} samples) |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n')
    body = ''.join(f"| `{r['preset']}` | {r['params']:,} | {r['steps']:,} | {r['train']:.4f} | {r['val']:.4f} | {r['test']:.4f} "
                   f"| {r['seconds'] / 60:.1f} min | {r['peak_rss_mib']} MiB | {r['in_training_set']:.1%} | {r['new']:.1%} "
                   f"| {r['distinct']:.1%} |\n" for r in rows)
    names = ''.join(f"\n- `{r['preset']}`: {', '.join(r['examples'])}" for r in rows)
    return head + body + '\nNames sampled at temperature 1, seed 0:\n' + names + '\n'


def main():
    if sys.argv[1:2] == ['--child']:
        name, run_dir, data, curve_path = sys.argv[2:6]
        return child(name, run_dir, data or None, curve_path)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--presets', nargs='+', default=None, help='the presets to run (default: every preset of chapter 05a)')
    ap.add_argument('--data', help='word file (default: names.txt)')
    ap.add_argument('--samples', type=int, default=10000)
    ap.add_argument('--keep', help='train the runs into this directory and keep them (default: a temporary one)')
    ap.add_argument('--markdown', help='also write the table to this file')
    ap.add_argument('--json', help='also write the rows as JSON to this file')
    args = ap.parse_args()
    if args.presets is None:
        from mlp_names.deeper import PRESETS
        args.presets = list(PRESETS)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        rows = []
        for name in args.presets:
            rows.append(measure(name, base / name, args.data, args.samples))
            r = rows[-1]
            print(f"{name}: {r['seconds']:.0f} s, train {r['train']:.4f} val {r['val']:.4f} test {r['test']:.4f}", flush=True)
    table = markdown(rows, args.samples)
    print('\n' + table)
    if args.markdown:  # bench/speedrun.py's section, after the table, is kept
        old = Path(args.markdown).read_text() if Path(args.markdown).exists() else ''
        kept = old[old.index(SPEEDRUN):] if SPEEDRUN in old else ''
        Path(args.markdown).write_text(table + kept)
    if args.json: Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')


if __name__ == '__main__':
    main()
