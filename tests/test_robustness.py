"""Issue 10, cases 1-19, as a user meets them: `mlp-names` run as a command on bad input, big settings, interrupts and
concurrent jobs. Each refusal is one line on stderr that names the problem and the fix, a non-zero exit status, no
traceback and no file changed; legitimate input just works. Cases tested where they teach something live in the
notebooks (01_dataset, 01a_files, 04_train, 05b_runs, 06_sampling, 07_cli); each test here names its case."""
import json, os, re, shutil, signal, stat, subprocess, sys, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
NAMES = ROOT / 'data' / 'names.txt'


def mlp(*args, cwd, env=None, **kw):
    "Run `mlp-names args` in `cwd`; the completed process (text output)."
    return subprocess.run([MLP_NAMES, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


class Result:
    def __init__(self, returncode, stdout, stderr): self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    "Run `mlp-names args` in this process (no second torch import): `cli(*args, cwd=...)` gives a Result."
    from mlp_names.cli import main
    def run(*args, cwd, env=None):
        monkeypatch.chdir(cwd)
        for k, v in (env or {}).items(): monkeypatch.setenv(k, v)
        capsys.readouterr()
        try: code = main(list(map(str, args)))
        except SystemExit as e: code = e.code  # argparse's refusals
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


def refused(r, status: int, *needles: str) -> str:
    "Check a clean refusal: exit status, one error line containing every needle, no traceback."
    err = r.stderr.strip()
    assert r.returncode == status, (r.returncode, r.stdout[-500:], err)
    assert 'Traceback' not in err and err, err
    last = err.splitlines()[-1]
    for needle in needles: assert needle in last, (needle, last)
    return last


def snapshot(folder: Path) -> dict:
    "Every file under `folder` with its bytes (to show that nothing changed)."
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


def wait_for(cond, timeout=60.0, what='condition'):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond(): return
        time.sleep(0.05)
    raise AssertionError(f'timed out waiting for {what}')


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A scratch directory with two small word files and one trained run `base` (200 steps on small.txt)."
    d = tmp_path_factory.mktemp('robust')
    words = NAMES.read_text().split()
    (d / 'small.txt').write_text('\n'.join(words[:2000]) + '\n')
    (d / 'other.txt').write_text('\n'.join(words[2000:4000]) + '\n')
    r = mlp('train', '--run', 'base', '--data', 'small.txt', '--steps', 200, '--quiet', cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def long_train(d: Path, run: str, *extra):
    "A `mlp-names train` that would run for a long time, printing log lines (stdout is a pipe)."
    return subprocess.Popen([MLP_NAMES, 'train', '--run', run, '--data', 'small.txt', '--steps', '1000000', *extra],
                            cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# 1. Two trains on one run directory: the second is refused at once, naming the holder; a stale lock is taken over.
def test_second_writer_refused_then_stale_lock_taken(cli, work):
    first = long_train(work, 'cc', '--checkpoint-every', '50')
    try:
        wait_for(lambda: (work / 'cc' / '.lock').is_file() and (work / 'cc' / '.lock').read_text().strip(), what='lock')
        wait_for(lambda: (work / 'cc' / 'run.pt').is_file(), what='a checkpoint')
        start = time.monotonic()
        for args in (('--force',), ('--resume', '--steps', 10)):
            r = cli('train', '--run', 'cc', '--data', 'small.txt', '--steps', 10, *args, cwd=work) if args[0] == '--force' \
                else cli('train', '--run', 'cc', *args, cwd=work)
            refused(r, 1, f'is being written by process {first.pid}', 'wait for it to finish, or choose another directory')
        assert time.monotonic() - start < 30  # at once: no training happened
    finally:
        first.send_signal(signal.SIGKILL); first.communicate()
    assert (work / 'cc' / '.lock').is_file()  # left behind by SIGKILL: a stale lock
    step = json.loads((work / 'cc' / 'run.json').read_text())['step']
    r = cli('train', '--run', 'cc', '--resume', '--steps', step + 50, '--quiet', cwd=work)
    assert r.returncode == 0, r.stderr
    assert not (work / 'cc' / '.lock').exists()  # released on exit
    assert json.loads((work / 'cc' / 'run.json').read_text())['step'] == step + 50


# 2. --resume with other data is refused and changes nothing.
def test_resume_on_other_data_refused(cli, work):
    before = snapshot(work / 'base')
    r = cli('train', '--run', 'base', '--resume', '--steps', 300, '--data', 'other.txt', cwd=work)
    refused(r, 1, 'other.txt holds other words than the ones this run trained on', '--data')
    assert snapshot(work / 'base') == before


# 3. --run naming a file is refused before any training, and the file is untouched.
def test_run_that_is_a_file_refused_before_training(cli, work):
    (work / 'f.txt').write_text('x\n')
    start = time.monotonic()
    r = cli('train', '--run', 'f.txt', '--data', 'small.txt', '--steps', 100000, cwd=work)
    refused(r, 1, 'f.txt: exists and is not a directory; choose another --run')
    assert time.monotonic() - start < 30 and (work / 'f.txt').read_text() == 'x\n'
    assert r.stdout == ''  # not a single training log line


# 4. A directory with the user's own run.json (no run.pt) is not overwritten without --force.
def test_users_own_run_json_kept(cli, work):
    (work / 'mine').mkdir()
    (work / 'mine' / 'run.json').write_text('{"my": "notes"}\n')
    r = cli('train', '--run', 'mine', '--data', 'small.txt', '--steps', 10, cwd=work)
    refused(r, 1, 'mine already holds run.json', '--force')
    assert snapshot(work / 'mine') == {'run.json': b'{"my": "notes"}\n'}


# 5. Ctrl-C (SIGINT) saves the run at the step reached and says how to continue; the run then resumes.
def test_interrupt_saves_at_step_reached(cli, work):
    p = long_train(work, 'intr')  # checkpoints only every 5,000 steps: the save comes from the interrupt
    seen = []
    while len(seen) < 4:  # log lines every 100 steps: wait for step 300
        line = p.stdout.readline()
        assert line, p.stderr.read()
        seen.append(line)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    m = re.search(r'interrupted; saved at step (\d+) to intr; continue with `mlp-names train --run intr --resume`', err)
    assert m and 'Traceback' not in err, err
    step = int(m.group(1))
    assert 300 < step < 5000 and json.loads((work / 'intr' / 'run.json').read_text())['step'] == step
    r = cli('train', '--run', 'intr', '--resume', '--steps', step + 20, '--quiet', cwd=work)
    assert r.returncode == 0 and f'step {step + 20}:' in r.stdout, r.stderr


# 8. The data path is recorded resolved, so that `evaluate` works from any directory; also for the default names.txt.
def test_resolved_data_path_recorded(cli, work, tmp_path):
    assert json.loads((work / 'base' / 'run.json').read_text())['data']['path'] == str((work / 'small.txt').resolve())
    r = cli('evaluate', '--run', work / 'base', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('train '), r.stderr
    r = cli('train', '--run', 'dflt', '--steps', 5, '--quiet', cwd=tmp_path, env={'MLP_NAMES_DATA': str(NAMES)})
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / 'dflt' / 'run.json').read_text())['data']['path'] == str(NAMES.resolve())
    elsewhere = tmp_path / 'elsewhere'; elsewhere.mkdir()
    env = {'MLP_NAMES_DATA': ''}  # no default to fall back on: the recorded path must be used
    r = cli('evaluate', '--run', tmp_path / 'dflt', '--json', cwd=elsewhere, env=env)
    assert r.returncode == 0 and set(json.loads(r.stdout)) == {'train', 'val', 'test'}, r.stderr


# 12. Files of 1 to 5 words: refused before training, saying how many words are needed; nothing written.
@pytest.mark.parametrize('n', [1, 2, 3, 4, 5])
def test_too_few_words(cli, work, n):
    (work / f'few{n}.txt').write_text('\n'.join(['anna', 'bob', 'cyd', 'dan', 'eve'][:n]) + '\n')
    r = cli('train', '--run', f'few{n}', '--data', f'few{n}.txt', '--steps', 10, cwd=work)
    refused(r, 1, f"{n} word{'s are' if n != 1 else ' is'} too few", 'at least 6 words')
    assert not (work / f'few{n}').exists()


# 13. A UTF-8 byte-order mark is not a character of any name.
def test_bom_is_not_a_character(cli, work):
    (work / 'bom.txt').write_bytes(b'\xef\xbb\xbf' + (work / 'small.txt').read_bytes())
    r = cli('train', '--run', 'bom', '--data', 'bom.txt', '--steps', 20, '--quiet', cwd=work)
    assert r.returncode == 0, r.stderr
    assert json.loads((work / 'bom' / 'run.json').read_text())['vocab'] == '.' + 'abcdefghijklmnopqrstuvwxyz'
    r = cli('sample', '--run', 'bom', '-n', 2000, cwd=work)
    assert r.returncode == 0 and '\ufeff' not in r.stdout and len(r.stdout.splitlines()) == 2000


# 14. Bad sampling and training arguments: refused by flag name (argparse: status 2), nothing run.
@pytest.mark.parametrize('args, needle', [
    (('sample', '--run', 'base', '--temperature', '1e-39'), 'argument --temperature: must be a number from 0.001 to 1000'),
    (('sample', '--run', 'base', '--temperature', 'nan'), 'argument --temperature: must be a number from 0.001 to 1000'),
    (('sample', '--run', 'base', '--seed', '99999999999999999999999'), 'argument --seed: must be a whole number from 0 to 2**63-1'),
    (('sample', '--run', 'base', '--seed', '1.5'), "argument --seed: expected a whole number, got '1.5'"),
    (('sample', '--run', 'base', '-n', '-3'), 'argument -n: must be a whole number from 0 to 2**63-1'),
    (('train', '--run', 'x', '--seed', '99999999999999999999999'), 'argument --init-seed/--seed: must be at least 0'),
    (('train', '--run', 'x', '--autograd', 'no'), 'unrecognized arguments: no'),
    (('train', '--run', 'x', '--steps', '1000000000000'), 'argument --max-steps/--steps: must be at least 0 and at most'),
    (('train', '--run', 'x', '--n-hidden', '100000'), 'argument --n-hidden: must be at least 1 and at most 4096'),
    (('train', '--run', 'x', '--batch-size', '1000000000'), 'argument --batch-size: must be at least 2 and at most'),
    (('train', '--run', 'x', '--block-size', '5000'), 'argument --block-size: must be at least 1 and at most 64'),
])
def test_bad_arguments(cli, work, args, needle):
    before = snapshot(work / 'base')
    refused(cli(*args, cwd=work), 2, needle)
    assert snapshot(work / 'base') == before and not (work / 'x').exists()


# 14. The same checks in the Python API (sample, TrainConfig, a run.pt with a negative step).
def test_bad_arguments_api(work):
    import torch
    from mlp_names.runs import load_run, state_sha256
    from mlp_names.sampling import Sampler, sample
    from mlp_names.train import TrainConfig
    run = load_run(work / 'base')
    for kw, needle in [({'temperature': 1e-300}, 'temperature must be'), ({'seed': 1.5}, 'seed must be'),
                       ({'max_len': -3}, 'max_len must be'), ({'n': -1}, 'n must be')]:
        with pytest.raises(ValueError, match=re.escape(needle)): sample(Sampler(run.model, run.vocab, 3), **kw)
    assert len(sample(Sampler(run.model, run.vocab, 3), n=5, temperature=1e-3)) == 5  # tiny but allowed: no inf/nan crash
    for kw in ({'autograd': 'no'}, {'init_seed': 2**70}, {'max_steps': 10**12}):
        with pytest.raises(ValueError, match='TrainConfig'): TrainConfig(**kw)
    state = torch.load(work / 'base' / 'run.pt', weights_only=True)
    (work / 'neg').mkdir()
    torch.save({**state, 'step': -5}, work / 'neg' / 'run.pt')  # edited: its checksum no longer matches
    with pytest.raises(ValueError, match='its contents differ from the SHA-256 recorded'): load_run(work / 'neg')
    edited = {**state, 'step': -5}
    torch.save({**edited, 'sha256': state_sha256(edited)}, work / 'neg' / 'run.pt')  # edited, checksum and all
    with pytest.raises(ValueError, match='step -5 does not match'): load_run(work / 'neg')


# 15. A run.pt of 'PK' and random bytes is reported as damaged, not as a dangerous file; every command says so.
def test_damaged_run_file(cli, work):
    import random
    (work / 'dmg').mkdir()
    (work / 'dmg' / 'run.pt').write_bytes(b'PK' + random.Random(0).randbytes(4000))
    before = snapshot(work / 'dmg')
    for args in (('sample',), ('evaluate',), ('train', '--resume', '--steps', 10)):
        last = refused(cli(*args, '--run', 'dmg', cwd=work), 1, 'dmg/run.pt: not a readable mlp_names run', 'damaged')
        assert 'could run code' not in last
    assert snapshot(work / 'dmg') == before


# 11. Settings within each flag's bounds that cannot fit in memory: refused before anything large is allocated.
def test_oversized_settings_refused(cli, work):
    start = time.monotonic()
    r = cli('train', '--run', 'huge', '--data', 'small.txt', '--n-hidden', 4096, '--n-layers', 64, '--batch-size', 65536,
            cwd=work)
    last = refused(r, 1, 'these settings need about', "more than this machine's", 'lower --batch-size')
    assert re.search(r'need about [\d,.]+ GB', last)
    assert time.monotonic() - start < 30 and not (work / 'huge').exists()


# 11. A run's file grows with the steps it has done, not with the steps it was asked for (no preallocated history).
def test_checkpoint_size_does_not_depend_on_max_steps(work):
    from mlp_names.files import load_words
    from mlp_names.runs import save_run
    from mlp_names.train import RecordUpdateRatios, TrainConfig, fit, new_run
    words = load_words(work / 'small.txt')
    sizes = []
    for max_steps in (100, 10**8):
        run = new_run(TrainConfig(max_steps=max_steps), words)
        fit(run, *run.splits(words)['train'], 40, [RecordUpdateRatios()])
        sizes.append(save_run(run, work / f'size{max_steps}').stat().st_size)
    assert abs(sizes[0] - sizes[1]) < 100 and sizes[1] < 1_000_000, sizes


# 10. `sample` streams: ten million names start at once and stop quietly when the reader goes away.
def test_sample_streams_and_stops_with_its_reader(work):
    p = subprocess.Popen([MLP_NAMES, 'sample', '--run', 'base', '-n', '10000000'], cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = [p.stdout.readline() for _ in range(3)]
    p.stdout.close()  # as `| head -3` does
    err = p.stderr.read(); p.wait(timeout=60)
    assert all(l.strip() for l in first) and 'Traceback' not in err and 'error' not in err, err


# 16. `make train` passes ARGS, so it can be run again (`make train ARGS="--force"`); shown with a dry run.
def test_make_train_passes_args(tmp_path):
    if not shutil.which('make'): pytest.skip('make is not installed')
    r = subprocess.run(['make', '-n', '-C', str(ROOT), 'train', 'ARGS=--force --steps 10'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert any(l.strip().endswith('mlp-names train --force --steps 10') for l in r.stdout.splitlines()), r.stdout


# 17. `pytest` with no data and no network stops at once with one message that says how to provide names.txt.
def test_no_data_fails_once_with_the_fix(tmp_path):
    proj = tmp_path / 'proj'
    (proj / 'tests').mkdir(parents=True); (proj / 'nbs').mkdir()
    for name in ('conftest.py', 'pytest.ini'): shutil.copy2(ROOT / name, proj / name)
    shutil.copy2(ROOT / 'nbs' / 'sanitize.cfg', proj / 'nbs' / 'sanitize.cfg')
    (proj / 'tests' / 'test_one.py').write_text('def test_one(): pass\n')
    env = {k: v for k, v in os.environ.items() if k != 'MLP_NAMES_DATA'}
    env.update(XDG_CACHE_HOME=str(tmp_path / 'cache'), https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9',
               HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9', no_proxy='', NO_PROXY='')
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider'], cwd=proj, env=env,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and 'the tests need data/names.txt' in out, out[-2000:]
    assert 'data/names.txt' in out and '--data' in out and 'MLP_NAMES_DATA' in out
    assert 'Traceback' not in out and 'passed' not in out and len(out.splitlines()) < 15, out
    assert not (proj / 'data').exists()


# 18. run.pt, run.json and the PNGs get the mode any new file gets under the umask.
@pytest.mark.parametrize('umask', [0o027, 0o002])
def test_file_modes_follow_umask(work, tmp_path, umask):
    def run(*args):
        return subprocess.run([MLP_NAMES, *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                              preexec_fn=lambda: os.umask(umask))
    assert run('train', '--run', 'm', '--data', work / 'small.txt', '--steps', 20, '--quiet').returncode == 0
    files = [tmp_path / 'm' / 'run.pt', tmp_path / 'm' / 'run.json']
    if umask == 0o027:  # plot takes a few seconds: once is enough
        r = run('plot', '--run', 'm')
        assert r.returncode == 0, r.stderr
        pngs = sorted((tmp_path / 'm').glob('*.png'))
        assert len(pngs) >= 4
        files += pngs
    for f in files: assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, (f.name, oct(f.stat().st_mode))


# 19. The README says which torch build PyPI gives and how to choose the CPU build; the Makefile has the variable.
def test_readme_says_how_to_get_cpu_torch():
    readme, makefile = (ROOT / 'README.md').read_text(), (ROOT / 'Makefile').read_text()
    assert 'TORCH_INDEX=https://download.pytorch.org/whl/cpu' in readme
    assert 'CUDA build' in readme and 'the CPU build' not in readme.replace('the CPU-only build', '')
    assert re.search(r'^TORCH_INDEX \?=', makefile, re.M) and '$(TORCH_INDEX)' in makefile
    assert 'make train ARGS="--force"' in readme  # case 16, said in the README
