"""A run that is damaged is refused, never trained on; and the hostile inputs that used to get through.

Cases 1-10 as a user meets them (`mlp-names` on bad files and bad input): each is refused in one line on stderr, with
a non-zero exit status, no traceback and no file changed, or simply works. Then a seeded fault injection over every
part of run.pt and run.json, and runs made to diverge. The chapters that own the code (01, 01a, 05b, 06, 07) check the
same behaviour where they explain it."""
import errno, io, json, os, random, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest
import torch

from mlp_names.files import WriteError
from mlp_names.runs import RUN_FILE, SUMMARY_FILE, job_callbacks, load_run, run_state, state_sha256
from mlp_names.train import fit
from test_faults import assert_same
from test_robustness import NAMES, cli, mlp, refused, snapshot  # noqa: F401 (cli is a fixture)

SMALL = ['--n-hidden', 40, '--n-layers', 2]  # a small model: a run.pt of about 75 KB, quick to train and to load


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A scratch directory with a small word file and one trained run `base` (300 steps, checkpoints every 100)."
    d = tmp_path_factory.mktemp('integrity')
    (d / 'small.txt').write_text('\n'.join(NAMES.read_text().split()[:2000]) + '\n')
    r = mlp('train', '--run', 'base', '--data', 'small.txt', '--steps', 300, '--checkpoint-every', 100, '--quiet', *SMALL, cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def copy_run(work: Path, name: str) -> Path:
    shutil.rmtree(work / name, ignore_errors=True)
    shutil.copytree(work / 'base', work / name)
    return work / name


def xor(path: Path, at: int, n: int, mask: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, at + n): data[i] ^= mask
    path.write_bytes(bytes(data))


def entry_offset(path: Path, suffix: str) -> int:
    "Where the bytes of the zip entry whose name ends with `suffix` start in `path`."
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    return info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)


def resealed(run_dir: Path, change) -> None:
    "Rewrite run_dir/run.pt with `change(state)` applied and a valid checksum: damage the integrity check cannot see."
    state = torch.load(run_dir / RUN_FILE, weights_only=True)
    change(state)
    state['sha256'] = state_sha256(state)
    torch.save(state, run_dir / RUN_FILE)


# 1. 64 bytes XOR 0xFF at the middle of run.pt: evaluate and resume both refuse it, and the run is left as it was.
def test_flipped_bytes_refused_and_resume_never_overwrites(cli, work):
    d = copy_run(work, 'flip')
    xor(d / RUN_FILE, (d / RUN_FILE).stat().st_size // 2, 64, 0xFF)
    before = snapshot(d)
    for args in (('evaluate',), ('sample',), ('score', 'emma'), ('train', '--resume', '--steps', 400)):
        refused(cli(*args, '--run', 'flip', cwd=work), 1, 'flip/run.pt: not a readable mlp_names run (damaged',
                'restore it from a copy, or train again')
    assert snapshot(d) == before


# 2. 16 bytes XOR 0x40 at the start of the weight entry archive/data/1: refused by every command, nothing saved.
def test_flipped_weight_refused(cli, work):
    d = copy_run(work, 'weight')
    xor(d / RUN_FILE, entry_offset(d / RUN_FILE, '/data/1'), 16, 0x40)
    before = snapshot(d)
    for args in (('sample',), ('evaluate', '--samples', 100), ('score', 'emma'), ('train', '--resume', '--steps', 400)):
        last = refused(cli(*args, '--run', 'weight', cwd=work), 1, "its part 'archive/data/1' does not match its checksum")
        assert 'nan' not in last
    assert snapshot(d) == before


# 2. A weight that is NaN, in a run.pt whose checksum is right: sample, score and evaluate refuse the model in one line.
def test_nonfinite_weights_refused_by_every_command(cli, work):
    d = copy_run(work, 'nan')
    resealed(d, lambda s: s['model']['2.weight'].view(-1)[:4].fill_(float('nan')))
    before = snapshot(d)
    for args in (('sample',), ('evaluate',), ('score', 'emma'), ('plot',), ('train', '--resume', '--steps', 400)):
        refused(cli(*args, '--run', 'nan', cwd=work), 1, "nan/run.pt: model['2.weight'] holds NaN or infinity",
                'train again with a lower --lr')
    assert snapshot(d) == before


# 3. A symbolic link in place of the lock file is not followed: refused in one line, its target unchanged.
def test_symlinked_lock_refused(cli, work, tmp_path):
    d = copy_run(work, 'link')
    victim = tmp_path / 'victim.txt'; victim.write_text('keep')
    (d / '.lock').symlink_to(victim)
    refused(cli('train', '--run', 'link', '--resume', '--steps', 350, cwd=work), 1,
            'link/.lock is a symbolic link, not a lock file; it was not followed', 'Remove it')
    assert victim.read_text() == 'keep' and (d / '.lock').is_symlink()
    assert json.loads((d / SUMMARY_FILE).read_text())['step'] == 300  # nothing trained
    (d / '.lock').unlink()
    assert cli('train', '--run', 'link', '--resume', '--steps', 310, '--quiet', cwd=work).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    "A mount point maker for tiny tmpfs file systems (needs root and mount; the test is skipped otherwise)."
    mounted = []
    def make(size: str) -> Path:
        point = tmp_path / f'disk{len(mounted)}'; point.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(point)], capture_output=True, text=True)
        if r.returncode != 0: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
        mounted.append(point)
        return point
    yield make
    for point in mounted: subprocess.run(['umount', str(point)], capture_output=True)


# 4. A full disk (a real one: a 120 KB tmpfs): the message names the file and the step that is safe on disk, whose
# checkpoint is intact; a run that never saved leaves no directory behind.
def test_full_disk_names_the_file_and_the_safe_step(work, small_disk):
    disk = small_disk('120k')  # room for one checkpoint of this model, not for a second beside it
    r = mlp('train', '--run', disk / 'r', '--data', 'small.txt', '--steps', 2000, '--checkpoint-every', 500, '--quiet',
            *SMALL, cwd=work)
    refused(r, 1, f'could not write {disk / "r" / RUN_FILE}: No space left on device',
            f'{disk / "r"} keeps the run saved at step 500', 'make room, then continue with --resume')
    assert load_run(disk / 'r').step == 500 and list(disk.glob('r/.*.tmp')) == []
    tiny = small_disk('40k')  # not even one checkpoint
    r = mlp('train', '--run', tiny / 'r', '--data', 'small.txt', '--steps', 600, '--quiet', *SMALL, cwd=work)
    refused(r, 1, 'No space left on device', f'nothing of this run was saved, and {tiny / "r"} is removed', 'train again')
    assert list(tiny.iterdir()) == []


# 4. The same without root: the second save fails with ENOSPC (simulated); the message and what is left are the same.
def test_full_disk_simulated(cli, work, monkeypatch):
    import mlp_names.runs as runs
    real, calls = runs.atomic_write_bytes, []
    def failing(path, data):
        calls.append(path)
        if Path(path).name == RUN_FILE and sum(Path(p).name == RUN_FILE for p in calls) >= 2:
            raise WriteError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)
    monkeypatch.setattr(runs, 'atomic_write_bytes', failing)
    shutil.rmtree(work / 'full', ignore_errors=True)
    r = cli('train', '--run', 'full', '--data', 'small.txt', '--steps', 300, '--checkpoint-every', 100, '--quiet', *SMALL, cwd=work)
    refused(r, 1, 'could not write full/run.pt: No space left on device', 'full keeps the run saved at step 100')
    monkeypatch.setattr(runs, 'atomic_write_bytes', real)
    assert load_run(work / 'full').step == 100


# 5. Control characters inside a word are refused with their line, before any training; nothing is written.
@pytest.mark.parametrize('char', ['\x00', '\t', '\x1b', '\x7f', '\u202e'])
def test_control_characters_refused(cli, work, char):
    words = NAMES.read_text().split()[:2000]
    words[41] = 'jhuno' + char + 'lalee'
    (work / 'ctl.txt').write_text('\n'.join(words) + '\n')
    r = cli('train', '--run', 'ctl', '--data', 'ctl.txt', '--steps', 300, cwd=work)
    refused(r, 1, f'ctl.txt, line 42: the word {("jhuno" + char + "lalee")!r} contains {char!r}', 'remove it')
    assert not (work / 'ctl').exists()


# 6. Lines end at \n only: \x0c, \x85, \u2028 inside a word do not split it; line numbers stay the file's.
def test_lines_are_the_files_lines(cli, work):
    lines = ['anna', 'bo\x0cb', 'cyd']
    (work / 'ff.txt').write_text('\n'.join(lines) + '\n')
    refused(cli('train', '--run', 'ff', '--data', 'ff.txt', cwd=work), 1, "ff.txt, line 2: the word 'bo\\x0cb'")
    assert not (work / 'ff').exists() and not (work / 'sep').exists()
    for i, sep in enumerate(['\x85', '\u2028', '\x1c']):
        (work / f'sep{i}.txt').write_text(f'anna\nbo{sep}b\ncyd\n')
        refused(cli('train', '--run', 'sep', '--data', f'sep{i}.txt', cwd=work), 1, f'sep{i}.txt, line 2: the word')
    (work / 'drift.txt').write_text('\n'.join(['\x0cann'] * 10 + ['bad.word']) + '\n')  # a form feed at a line's edge
    refused(cli('train', '--run', 'drift', '--data', 'drift.txt', cwd=work), 1, "drift.txt, line 11: the word 'bad.word'")
    from mlp_names.files import load_words
    (work / 'crlf.txt').write_bytes(b'anna\r\nbob\r\n\r\ncyd\n')
    assert load_words(work / 'crlf.txt') == ['anna', 'bob', 'cyd']


# 7. /dev/null and a FIFO as --data: refused as not regular files (and the FIFO is not waited on).
def test_non_regular_data_refused(cli, work, tmp_path):
    os.mkfifo(tmp_path / 'fifo')
    for path in ('/dev/null', tmp_path / 'fifo'):
        refused(cli('train', '--run', 'nr', '--data', path, cwd=work), 1, f'{path}: is not a regular file')
        refused(cli('evaluate', '--run', 'base', '--data', path, cwd=work), 1, 'is not a regular file')
    assert not (work / 'nr').exists()


# 8. --max-len out of range is an argparse refusal; a long --max-len with many names works in bounded batches.
def test_max_len_bounded(cli, work):
    for value in ('1000000000000', '9223372036854775807', '0', '100001'):
        refused(cli('sample', '--run', 'base', '-n', 1, '--max-len', value, cwd=work), 2, 'argument --max-len: must be a whole number from 1 to 100,000')
    r = cli('sample', '--run', 'base', '-n', 3000, '--max-len', 100000, cwd=work)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3000, r.stderr
    import mlp_names.sampling as sampling
    run, real = load_run(work / 'base'), sampling._draw
    def batch_sizes(**kw) -> list[int]:
        sizes = []
        def draw(net, vocab, bs, m, *args): sizes.append(m); return real(net, vocab, bs, m, *args)
        sampling._draw = draw
        try: sampling.sample(sampling.Sampler(run.model, run.vocab, 3), n=5000, **kw)
        finally: sampling._draw = real
        return sizes
    assert max(batch_sizes(max_len=10_000)) * 10_001 <= sampling.CELLS  # long names: batches of about a million letters
    assert batch_sizes() == [5000]                                      # the default length: one batch, as before


# 9. An alphabet of 3,000 letters is shortened in messages: one readable line.
def test_long_alphabet_shortened(cli, work):
    rng = random.Random(9)
    cjk = [chr(0x4e00 + i) for i in range(3000)]
    (work / 'cjk.txt').write_text('\n'.join(''.join(rng.choices(cjk, k=3)) for _ in range(6000)) + '\n' + '\n'.join(cjk) + '\n')
    r = cli('train', '--run', 'cjk', '--data', 'cjk.txt', '--steps', 5, '--quiet', '--n-hidden', 20, '--n-layers', 1, cwd=work)
    assert r.returncode == 0, r.stderr
    for args in (('score', 'emma'), ('sample', '--prefix', 'abc')):
        last = refused(cli(*args, '--run', 'cjk', cwd=work), 1, "which is not a letter of this model's names", '(3,000 letters)')
        assert len(last) < 250, len(last)


# 10. The small wording leaks: flags not Python names, a directory named run.pt, `score ''`, `score -` with a bad line.
def test_wording(cli, work, monkeypatch):
    last = refused(cli('train', '--run', 'base', '--data', 'small.txt', cwd=work), 1, 'replace it with --force, or choose another --run')
    assert 'overwrite' not in last
    last = refused(cli('train', '--run', 'x', '--preset', 'tree', '--merge', 3, cwd=work), 1, '--merge 3 must be 0', '--block-size 8')
    assert 'TrainConfig' not in last and 'block_size' not in last
    last = refused(cli('train', '--run', 'tiny-p', '--preset', 'tree', '--dropout', 0.001, cwd=work), 1,
                   '--dropout 0.001 rounds to 0 in steps of 1/256', 'at least 0.002')
    assert 'DeeperConfig' not in last and not (work / 'tiny-p').exists()
    (work / 'pt-dir' / RUN_FILE).mkdir(parents=True)
    for args in (('sample',), ('evaluate',), ('train', '--resume')):
        refused(cli(*args, '--run', 'pt-dir', cwd=work), 1, 'pt-dir/run.pt: is a directory, not a run file')
    refused(cli('score', '--run', 'base', '', cwd=work), 1, "the empty name '' has no letters to score")
    names = ['emma'] * 100_000
    names[76_543] = 'em1ma'
    monkeypatch.setattr(sys, 'stdin', io.TextIOWrapper(io.BytesIO(('\n'.join(names) + '\n').encode())))
    refused(cli('score', '--run', 'base', '-', cwd=work), 1, "standard input, line 76544: name 'em1ma' has '1'")


# The fault injection: 200 seeded trials, each flipping random bytes of run.pt (anywhere, and in each part of the zip:
# local headers, entry data, central directory, end record) or of run.json. Every trial is refused in one line, or
# loads a run equal, tensor for tensor, to the one saved; none loads a different run.
def test_fault_injection(work, tmp_path):
    good_pt, good_json = (work / 'base' / RUN_FILE).read_bytes(), (work / 'base' / SUMMARY_FILE).read_bytes()
    saved = {k: v for k, v in torch.load(io.BytesIO(good_pt), weights_only=True).items() if k != 'sha256'}
    with zipfile.ZipFile(io.BytesIO(good_pt)) as z:
        infos = z.infolist()
        central = z.start_dir  # where the central directory starts
    regions = ([(i.header_offset, 30 + len(i.filename) + len(i.extra)) for i in infos]                   # local headers
               + [(i.header_offset + 30 + len(i.filename) + len(i.extra), max(i.file_size, 1)) for i in infos]  # entries
               + [(central, len(good_pt) - central), (len(good_pt) - 22, 22)])  # central directory, its end record
    rng, outcomes = random.Random(19), {'refused': 0, 'equal': 0}
    d = tmp_path / 'trial'; d.mkdir()
    for trial in range(200):
        pt, js = bytearray(good_pt), bytearray(good_json)
        target = js if trial % 5 == 4 else pt
        if target is pt and trial % 2: start, size = rng.choice(regions)
        else: start, size = 0, len(target)
        for _ in range(rng.randint(1, 16)):
            target[start + rng.randrange(size)] ^= rng.randint(1, 255)
        (d / RUN_FILE).write_bytes(bytes(pt)); (d / SUMMARY_FILE).write_bytes(bytes(js))
        try: run = load_run(d)
        except (ValueError, OSError) as e:
            assert '\n' not in str(e) and str(d / RUN_FILE) in str(e), (trial, str(e))
            outcomes['refused'] += 1
            continue
        assert_same(saved, run_state(run), f'trial {trial}')  # loaded: then it is the saved run, exactly
        outcomes['equal'] += 1
    print(outcomes)
    assert outcomes['refused'] >= 100 and sum(outcomes.values()) == 200


# Divergence through the command line: an Adam state that makes the next update overflow (finite, checksum right,
# so it loads). The job stops at that step, says so and what to try, and the checkpoint it had is unchanged bit for bit.
def test_diverging_run_stops_and_keeps_its_checkpoint(cli, work):
    d = copy_run(work, 'diverge')
    def overflow(state):
        for m in state['optimizer']['exp_avg']: m.fill_(3e38)
        for v in state['optimizer']['exp_avg_sq']: v.zero_()
    resealed(d, overflow)
    before = snapshot(d)
    r = cli('train', '--run', 'diverge', '--resume', '--steps', 400, cwd=work)
    last = refused(r, 1, 'training stopped at step 301:', 'diverge keeps the run saved at step 300',
                   'start again with a lower --lr than 0.001')
    assert 'NaN or infinite' in last or 'the loss is' in last
    assert snapshot(d) == before


# Divergence through the Python API: an infinity written into one weight before continuing.
def test_infinite_weight_through_the_api_stops(work):
    d = copy_run(work, 'inf')
    before = snapshot(d)
    run = load_run(d)
    with torch.no_grad(): run.model.parameters()[1][0, 0] = float('inf')  # the first Linear's weight
    words = (work / 'small.txt').read_text().split()
    with pytest.raises(ValueError, match=r"training stopped at step 300: model\['2.weight'\] is NaN or infinite"):
        fit(run, *run.splits(words)['train'], 400, job_callbacks(d, quiet=True))
    assert snapshot(d) == before
