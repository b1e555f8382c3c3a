"""Issue 10, case 7 and "fault injection": `mlp-names train` killed with SIGKILL at random moments, many of them in the
middle of writing a checkpoint. After every kill the run directory loads; the next save leaves no temporary file
and run.json agrees with run.pt; and resuming to the end gives, bit for bit, the run that was never interrupted."""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path

import torch

from mlp_names.files import stale_temporaries
from mlp_names.runs import RUN_FILE, SUMMARY_FILE, continue_run, load_run

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
STEPS, EVERY, KILLS = 1500, 5, 8


def train(d: Path, run: str, *args) -> subprocess.Popen:
    return subprocess.Popen([MLP_NAMES, 'train', '--run', run, '--quiet', *map(str, args)], cwd=d,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def assert_same(a, b, where='run.pt'):
    "Every tensor equal bit for bit (torch.equal), everything else equal."
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, a.keys() ^ b.keys())
        for k in a: assert_same(a[k], b[k], f'{where}[{k!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)): assert_same(x, y, f'{where}[{i}]')
    else: assert a == b, (where, a, b)


def kill_at_random(p: subprocess.Popen, run_dir: Path, rng: random.Random) -> str:
    "SIGKILL `p` either at a random moment or as soon as a checkpoint is being written; what happened."
    deadline = time.monotonic() + 60
    if rng.random() < 0.5:  # mid-checkpoint: as soon as a temporary file of a save appears
        while time.monotonic() < deadline and p.poll() is None:
            if any(n.endswith('.tmp') for n in os.listdir(run_dir)) if run_dir.is_dir() else False: break
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.002))
        how = 'during a save'
    else:
        time.sleep(rng.uniform(0.5, 4.0))  # training starts after about a second (imports, data, model)
        how = 'at a random moment'
    p.send_signal(signal.SIGKILL)
    p.wait()
    return how if p.returncode == -signal.SIGKILL else f'finished first (exit {p.returncode})'


def test_sigkill_at_random_moments_then_resume_is_exact(tmp_path):
    words = (ROOT / 'data' / 'names.txt').read_text().split()
    (tmp_path / 'small.txt').write_text('\n'.join(words[:2000]) + '\n')
    settings = ['--data', 'small.txt', '--steps', STEPS, '--checkpoint-every', EVERY]
    ref = train(tmp_path, 'ref', *settings)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    rng, run_dir, log, last_step = random.Random(10), tmp_path / 'killed', [], 0
    for _ in range(KILLS):
        started = (run_dir / RUN_FILE).exists()
        p = train(tmp_path, 'killed', '--resume', '--steps', STEPS) if started else train(tmp_path, 'killed', *settings)
        log.append(kill_at_random(p, run_dir, rng))
        if not (run_dir / RUN_FILE).exists():
            assert not (run_dir / SUMMARY_FILE).exists()  # run.json is written only after run.pt
            continue
        run = load_run(run_dir)  # always loads, whatever the moment of the kill
        log[-1] += f', step {run.step}, {len(stale_temporaries(run_dir))} temporary files left'
        assert run.step >= last_step  # a kill never takes the saved run back
        last_step = run.step
        if run.step < STEPS:  # the next save (a few steps on, in this process) cleans up and brings run.json level
            run = continue_run(run_dir, run.step + 2, data=tmp_path / 'small.txt', quiet=True)
            last_step = run.step
            assert stale_temporaries(run_dir) == [], stale_temporaries(run_dir)
            assert json.loads((run_dir / SUMMARY_FILE).read_text())['step'] == run.step == load_run(run_dir).step
    print('\n'.join(log))
    assert any('during a save' in l for l in log)

    # on a busy machine every kill can come before the first save (start-up then takes seconds): train it anew
    if not (run_dir / RUN_FILE).exists() or load_run(run_dir).step < STEPS:
        more = ['--resume', '--steps', str(STEPS)] if (run_dir / RUN_FILE).exists() else list(map(str, settings))
        r = subprocess.run([MLP_NAMES, 'train', '--run', 'killed', *more, '--quiet'], cwd=tmp_path,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert stale_temporaries(run_dir) == []
    a, b = (torch.load(d / RUN_FILE, weights_only=True) for d in (tmp_path / 'ref', run_dir))
    for key in ('model', 'optimizer', 'generator', 'history', 'step'): assert_same(a[key], b[key], key)
    assert_same(a, b)  # and everything else: config, vocabulary, data path and checksum
