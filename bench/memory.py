"""Memory benchmark: the peak resident set size (RSS) of `mlp-names` commands, each in its own child process.

Run from the repository root:  python bench/memory.py [--quick] [--check] [--data PATH] [--json PATH]

Each command runs as a child process of this script; `os.wait4` returns the child's resource usage, whose
`ru_maxrss` is the child's own peak RSS (KiB on Linux), so nothing this script holds is counted. The commands:

- `train`: `mlp-names train` on names.txt with the default settings (20,000 steps; `--quick`: 2,000 steps,
  enough because nothing that grows with the step count is large: the loss history is 4 bytes a step);
- `train big`: `mlp-names train --steps 300` on a file of 2,000,000 random lowercase words (written by this script,
  with a fixed seed, into a temporary directory), which also evaluates every split at the end;
- `sample`: `mlp-names sample -n 1000000` from the run of `train`, output to /dev/null; also timed;
- `sample long`: `mlp-names sample -n 10000 --max-len 10000` from the same run: a batch's memory grows with
  names x letters, so sampling shrinks its batches as `--max-len` grows (chapter 06); without that, 3.4 GB.
- `score stdin`: `mlp-names score -` from the same run, 1,000,000 names on standard input (drawn from names.txt with
  a fixed seed): standard input is read a line at a time and scored 10,000 names at a time (chapter 07); reading it
  whole took 1.0 GB.

The table gives each figure, its limit and pass/fail. Exit status: 1 with `--check` if any limit is missed, else 0.
"""
from __future__ import annotations
import argparse, json, os, random, shutil, string, subprocess, sys, tempfile, time
from pathlib import Path

MB = 10**6  # the units: 500 MB is 500,000,000 bytes
LIMITS = {'train': 500, 'train_big': 2000, 'sample': 500, 'sample_s': 60, 'sample_long': 500,  # MB, MB, MB, s, MB
          'score_stdin': 400}  # MB


def mlp_names_exe() -> str:
    exe = Path(sys.executable).parent / 'mlp-names'
    return str(exe) if exe.exists() else 'mlp-names'


def measure(cmd: list[str], cwd, env=None, stdin=None) -> dict:
    "Run `cmd` as a child; its peak RSS in MB (from wait4's rusage), wall seconds, exit status and stderr tail."
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err, open(stdin or os.devnull, 'rb') as given:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=given, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
        seconds = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors='replace').strip().splitlines()[-1:]
    rss = usage.ru_maxrss * (1 if sys.platform == 'darwin' else 1024) / MB
    return {'cmd': ' '.join(cmd[1:]), 'rss_mb': round(rss, 1), 'seconds': round(seconds, 1),
            'status': p.returncode, 'stderr': tail[0] if tail else ''}


def random_words(path: Path, n: int, seed: int = 0) -> Path:
    "Write `n` random lowercase words of 3 to 10 letters, one per line."
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    with path.open('w') as f:
        for _ in range(n):
            f.write(''.join(rng.choices(letters, k=rng.randint(3, 10))) + '\n')
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='train on names.txt for 2,000 steps instead of 20,000')
    ap.add_argument('--check', action='store_true', help='exit with status 1 if a limit is missed')
    ap.add_argument('--data', help='names.txt (default: found as mlp_names.files.names_path finds it)')
    ap.add_argument('--big-lines', type=int, default=2_000_000, help=argparse.SUPPRESS)
    ap.add_argument('--json', help='also write the results to this file')
    args = ap.parse_args(argv)
    from mlp_names.files import names_path
    data = str(Path(args.data).resolve()) if args.data else str(names_path())
    exe, results = mlp_names_exe(), {}
    tmp = Path(tempfile.mkdtemp(prefix='mlp_names_memory_'))
    try:
        steps = ['--steps', '2000'] if args.quick else []
        results['train'] = measure([exe, 'train', '--run', 'names', '--data', data, '--quiet', *steps], tmp)
        big = random_words(tmp / 'big.txt', args.big_lines)
        results['train_big'] = measure([exe, 'train', '--run', 'big', '--data', str(big), '--steps', '300', '--quiet'], tmp)
        results['sample'] = measure([exe, 'sample', '--run', 'names', '-n', '1000000'], tmp)
        results['sample_long'] = measure([exe, 'sample', '--run', 'names', '-n', '10000', '--max-len', '10000'], tmp)
        rng, names = random.Random(0), Path(data).read_text(encoding='utf-8').split()
        (tmp / 'names.in').write_text(''.join(rng.choice(names) + '\n' for _ in range(1_000_000)))
        results['score_stdin'] = measure([exe, 'score', '--run', 'names', '-'], tmp, stdin=tmp / 'names.in')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [('train on names.txt' + (' (2,000 steps)' if args.quick else ' (defaults)'), results['train']['rss_mb'], LIMITS['train'], 'MB', results['train']),
            (f'train 300 steps + evaluate, {args.big_lines:,} random words', results['train_big']['rss_mb'], LIMITS['train_big'], 'MB', results['train_big']),
            ('sample -n 1000000: peak RSS', results['sample']['rss_mb'], LIMITS['sample'], 'MB', results['sample']),
            ('sample -n 1000000: time', results['sample']['seconds'], LIMITS['sample_s'], 's', results['sample']),
            ('sample -n 10000 --max-len 10000: peak RSS', results['sample_long']['rss_mb'], LIMITS['sample_long'], 'MB',
             results['sample_long']),
            ('score - (1,000,000 names on standard input): peak RSS', results['score_stdin']['rss_mb'],
             LIMITS['score_stdin'], 'MB', results['score_stdin'])]
    ok = True
    print(f"| {'command':55s} | {'measured':>10s} | {'limit':>9s} | result |")
    print(f"|{'-' * 57}|{'-' * 12}|{'-' * 11}|--------|")
    for label, value, limit, unit, r in rows:
        passed = r['status'] == 0 and value <= limit
        ok &= passed
        verdict = 'pass' if passed else ('FAIL' if r['status'] == 0 else f"FAIL (exit {r['status']})")
        print(f"| {label:55s} | {value:>7.1f} {unit:2s} | {limit:>5d} {unit:3s} | {verdict} |")
    for name, r in results.items():
        if r['status'] != 0: print(f"{name}: exit status {r['status']}: {r['stderr']}", file=sys.stderr)
    print(f"(train wall time {results['train']['seconds']} s, train big {results['train_big']['seconds']} s; "
          f"{os.cpu_count()} CPUs)")
    if args.json: Path(args.json).write_text(json.dumps({'results': results, 'limits': LIMITS}, indent=2) + '\n')
    return 1 if args.check and not ok else 0


if __name__ == '__main__':
    sys.exit(main())
