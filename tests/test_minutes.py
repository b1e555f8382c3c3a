"""`mlp-names train --minutes M`: the budget becomes the run's step count (how closely the whole
command keeps it is measured by bench/speedrun.py --budgets, not here), and a run trained to a
budget resumes exactly: interrupted and resumed, it equals the run of its recorded step count."""
import json, re, signal, subprocess, sys, time
from pathlib import Path

import torch

from mlp_names.runs import budget_preset

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
NAMES = ROOT / 'data' / 'names.txt'


def train(*args, cwd):
    return subprocess.run([MLP_NAMES, 'train', '--data', NAMES, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / 'run.pt', weights_only=True)['model']


def test_minutes_become_the_runs_step_count(tmp_path):
    """The steps a budget buys are printed, recorded as the run's --steps, and trained; without a
    preset, the budget picks one. How closely the budget is kept is a measurement:
    `python bench/speedrun.py --budgets 1 10` (bench/README.md)."""
    t0 = time.monotonic()
    r = train('--run', 'a', '--minutes', 0.25, cwd=tmp_path)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    m = re.match(r'0\.25 minutes here is about ([\d,]+) steps of preset (\w+)\n', r.stdout)
    assert m and m.group(2) == budget_preset(0.25)[1], r.stdout  # no preset: the budget's own
    steps = int(m.group(1).replace(',', ''))
    assert json.loads((tmp_path / 'a' / 'run.json').read_text())['config']['max_steps'] == steps > 100
    assert f'step {steps}:' in r.stdout
    assert wall < 4 * 15 + 30, wall  # no runaway: a bound far from the budget, not a speed target


def test_minutes_run_resumes_exactly(tmp_path):
    "Interrupted and resumed, a budget run ends as a run of its recorded --steps, bit for bit."
    # cosine to the end; --threads beside --minutes wins over the budget's two
    args = ('--preset', 'original', '--warmup', 20, '--cosine', '--n-hidden', 64, '--threads', 1)
    cmd = [MLP_NAMES, 'train', '--data', NAMES, '--run', 'b', '--minutes', 0.5, *args]
    p = subprocess.Popen(list(map(str, cmd)),
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    m = re.fullmatch(r'0\.5 minutes here is about ([\d,]+) steps of preset original\n', first)
    assert m, first + p.stderr.read()
    steps = int(m.group(1).replace(',', ''))
    for _ in range(steps // 200): p.stdout.readline()  # log lines every 100 steps: about half-way
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'interrupted; saved at step' in err, err
    stopped = json.loads((tmp_path / 'b' / 'run.json').read_text())
    assert 0 < stopped['step'] < steps and stopped['config']['max_steps'] == steps
    assert stopped['config']['threads'] == 1
    r = train('--run', 'b', '--resume', '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and f'step {steps}:' in r.stdout, r.stderr
    r = train('--run', 'c', '--steps', steps, '--quiet', *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    a, b = weights(tmp_path / 'b'), weights(tmp_path / 'c')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_longer_budget_is_timed_for_longer(monkeypatch):
    """The calibration times steps for 1% of the budget, at least a second: this machine's speed
    drifts from second to second, and a longer run is worth a longer look."""
    from mlp_names import runs
    from mlp_names.deeper import preset
    asked = []

    def calibrate(config, words, run_of=None, seconds=1.0):
        asked.append(seconds)
        return {'step': 0.01, 'evaluate': 0.0, 'save': 0.0, 'setup': 0.0}

    monkeypatch.setattr(runs, 'calibrate', calibrate)
    words = NAMES.read_text().split()
    for minutes in (0.5, 1, 10, 100):
        steps, _ = runs.budget_plan(preset('tree', warmup=10), words, minutes)
        assert 0.99 * minutes * 6000 < steps <= minutes * 6000   # 10 ms a step, nothing else
    assert asked == [1.0, 1.0, 6.0, 60.0]


def test_calibration_times_steps_inside_one_fit(monkeypatch):
    """A budget's steps are timed as a job trains them, inside one `fit` (separate short `fit`
    calls ran slower and varied more): 20 untimed steps, then one `fit` that `StepTimer` stops
    after at least 50 steps and the seconds asked for."""
    from mlp_names import runs
    from mlp_names.deeper import preset
    calls, real = [], runs.fit

    def counted(run, X, Y, until, callbacks=()):
        calls.append((run.step, until))
        return real(run, X, Y, until, callbacks)

    monkeypatch.setattr(runs, 'fit', counted)
    words = NAMES.read_text().split()[:2000]
    t0 = time.perf_counter()
    cost = runs.calibrate(preset('tree', threads=1), words, seconds=0.5)
    took = time.perf_counter() - t0
    assert [c[0] for c in calls] == [0, 20] and calls[0][1] == 20, calls  # two fits, no more
    assert calls[1][1] > 10**6  # open-ended: the timer ends it
    assert took >= 0.5 and 0 < cost['step'] < 0.5, (took, cost)
