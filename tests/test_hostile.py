"""Issue 35, cases 1-7, as a hostile user meets them: a data file of any size, a data file changed after training,
a filesystem without chmod, Ctrl-C at any moment, the same names every call, a million names on standard input, a
huge alphabet. Each refusal is one line on stderr with its exit status, and no file changes."""
import errno, json, os, random, re, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

import pytest

from test_robustness import MLP_NAMES, NAMES, cli, mlp, refused, snapshot  # noqa: F401 (cli is a fixture)


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A scratch directory with data.txt (the first 2,000 names) and a run `r` trained on it for 200 steps."
    d = tmp_path_factory.mktemp('hostile')
    (d / 'data.txt').write_text('\n'.join(NAMES.read_text().split()[:2000]) + '\n')
    r = mlp('train', '--run', 'r', '--data', 'data.txt', '--steps', 200, '--quiet', cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def one_line(r, status: int, *needles: str) -> str:
    "Exactly one line on stderr, with every needle, and the exit status."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == status and len(lines) == 1, (r.returncode, r.stderr[-2000:])
    for needle in needles: assert needle in lines[0], (needle, lines[0])
    return lines[0]


# 1. A 2 GB data file is refused before memory grows (under a 6 GB address-space limit that reading it whole would
#    break), and a 5 MB line of NUL bytes gives a short message.
def test_huge_data_file_refused_before_reading(work):
    with open(work / 'big.txt', 'wb') as f: f.truncate(2 * 2**30)  # sparse: no disk used
    before = snapshot(work)
    r = subprocess.run(['prlimit', f'--as={6 * 2**30}', MLP_NAMES, 'train', '--data', 'big.txt', '--steps', '100',
                        '--run', 'huge'], cwd=work, capture_output=True, text=True)
    one_line(r, 1, 'big.txt: 2,147,483,648 bytes, more than the 67,108,864 a word list may have')
    assert snapshot(work) == before and not (work / 'huge').exists()


def test_five_megabyte_word_quoted_short(work):
    (work / 'nul.txt').write_bytes(b'anna\n' + b'\x00' * 5_000_000 + b'\n')
    r = mlp('train', '--data', 'nul.txt', '--steps', 100, '--run', 'nul', cwd=work)
    line = one_line(r, 1, 'nul.txt, line 2: the word', '(5,000,000 letters) is longer than the 1,000 letters')
    assert len(line) <= 250 and not (work / 'nul').exists()


# 2. The data changed after training: --novel, score and export find it through --data or MLP_NAMES_DATA;
#    evaluate never reports other words as the run's splits.
def test_changed_data_found_again(cli, work):
    (work / 'orig.txt').write_bytes((work / 'data.txt').read_bytes())
    (work / 'changed.txt').write_bytes((work / 'data.txt').read_bytes())
    assert mlp('train', '--run', 'moved', '--data', 'changed.txt', '--steps', 50, '--quiet', cwd=work).returncode == 0
    with open(work / 'changed.txt', 'a') as f: f.write('zed\n' * 100)  # the run's data, changed since
    before = snapshot(work / 'moved')
    for args in (('sample', '--novel', '--seed', 0), ('score', 'emma'), ('export', '--out', 'x.json'),
                 ('evaluate', '--json')):
        r = cli(args[0], '--run', 'moved', *args[1:], cwd=work)
        one_line(r, 1, 'changed.txt holds other words than the ones this run trained on',
                 "give the run's own data with --data or MLP_NAMES_DATA")
        ok = cli(args[0], '--run', 'moved', *args[1:], '--data', 'orig.txt', cwd=work)
        assert ok.returncode == 0, ok.stderr
        env = mlp(args[0], '--run', 'moved', *args[1:], '--force' if args[0] == 'export' else '--json',
                  cwd=work, env={'MLP_NAMES_DATA': str(work / 'orig.txt')})  # its own process: the variable stays there
        assert env.returncode == 0, env.stderr
    r = cli('evaluate', '--run', 'moved', '--data', 'changed.txt', '--json', cwd=work)
    one_line(r, 1, 'changed.txt holds other words than the ones this run trained on')
    assert r.stdout == ''
    assert snapshot(work / 'moved') == before


# 3. A filesystem without chmod (FAT: fchmod answers ENOSYS): the run is saved, and resumed; one that cannot fsync
#    is said as such, never "make room".
def test_filesystem_without_chmod(cli, work, monkeypatch):
    def unsupported(*args): raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    monkeypatch.setattr(os, 'fchmod', unsupported)
    r = cli('train', '--run', 'fat/run', '--data', 'data.txt', '--steps', 100, '--quiet', cwd=work)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    r = cli('train', '--run', 'fat/run', '--resume', '--steps', 150, '--quiet', cwd=work)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    assert json.loads((work / 'fat' / 'run' / 'run.json').read_text())['step'] == 150
    monkeypatch.setattr(os, 'fsync', unsupported)
    before = snapshot(work / 'fat')
    r = cli('train', '--run', 'fat/run', '--resume', '--steps', 200, '--quiet', cwd=work)
    line = one_line(r, 1, 'the filesystem cannot flush a file to disk (fsync: Function not implemented)',
                    'keeps the run saved at step 150', 'where it can be written')
    assert 'make room' not in line and snapshot(work / 'fat') == before


# 4. Ctrl-C at any moment of every command: one line and status 130, or the command finished (status 0, its whole
#    output); never a traceback. plot writes its six graphs together, and its help names them.
@pytest.mark.parametrize('args', [('export', '--run', 'r', '--out', 'e.json', '--force'),
                                  ('plot', '--run', 'r', '--out', 'g'),
                                  ('sample', '--run', 'r', '-n', 3, '--seed', 1),
                                  ('evaluate', '--run', 'r'),
                                  ('score', '--run', 'r', 'emma')])
def test_interrupt_at_any_moment(work, args):
    done = mlp(*args, cwd=work)  # what a finished command prints
    assert done.returncode == 0, done.stderr
    # from 0.3 s: the first tens of milliseconds are Python's own start-up (its `site` import), before any of ours
    for delay in (0.3, 0.6, 0.9, 1.3, 1.8, 2.5):
        p = subprocess.Popen([MLP_NAMES, *map(str, args)], cwd=work, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate()
        assert 'Traceback' not in err and p.returncode in (0, 130), (delay, p.returncode, err)
        if p.returncode == 0: assert (out, err) == (done.stdout, ''), delay
        else: assert len(err.strip().splitlines()) == 1 and 'interrupted' in err, (delay, err)
        if args[0] == 'plot':  # all six graphs, or none changed
            graphs = sorted(p.name for p in (work / 'g').glob('*.png'))
            assert graphs in ([], ['graph1.png', 'graph2.png', 'graph3.png', 'graph4.png', 'graph5.png',
                                   'loss.png']), graphs
            assert not list((work / 'g').glob('.plot.*'))


def test_plot_help_names_every_graph(work):
    from mlp_names.diagnostics import GRAPH_FILES
    flat = ' '.join(mlp('plot', '--help', cwd=work).stdout.split())
    assert all(name in flat for name in ('graph1.png', 'graph5.png', 'loss.png')) and len(GRAPH_FILES) == 6


# 5. sample draws new names at each call, says the seed on stderr, and --seed repeats it.
def test_fresh_names_each_call(work):
    a, b = mlp('sample', '--run', 'r', '-n', 5, cwd=work), mlp('sample', '--run', 'r', '-n', 5, cwd=work)
    assert a.stdout != b.stdout
    seed = int(re.fullmatch(r'seed (\d+): repeat with --seed \1\n', a.stderr).group(1))
    again = mlp('sample', '--run', 'r', '-n', 5, '--seed', seed, cwd=work)
    assert (again.stdout, again.stderr) == (a.stdout, '')
    flat = ' '.join(mlp('sample', '--help', cwd=work).stdout.split())
    assert 'default: a fresh seed each call, printed on standard error' in flat


# 6. score - streams: bounded memory (peak RSS of the child, from wait4), and --skip-bad scores the good lines.
def peak_mb(cmd, cwd, stdin_path) -> tuple[int, float]:
    with open(stdin_path, 'rb') as f:
        p = subprocess.Popen(cmd, cwd=cwd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss * 1024 / 1e6


def test_score_streams_standard_input(work):
    rng = random.Random(0)
    names = NAMES.read_text().split()
    (work / 'in.txt').write_text('\n'.join(rng.choice(names) for _ in range(200_000)) + '\n')
    (work / 'one.txt').write_text('emma\n')
    code, many = peak_mb([MLP_NAMES, 'score', '--run', 'r', '-'], work, work / 'in.txt')
    code1, one = peak_mb([MLP_NAMES, 'score', '--run', 'r', '-'], work, work / 'one.txt')
    assert code == code1 == 0
    assert many - one < 60, (many, one)  # 200,000 names cost at most 60 MB more than one (1,000,000: bench/memory.py)


def test_score_skip_bad(work):
    lines = [f'x{i}y' if i % 20 == 7 else 'emma' for i in range(20_000)]  # 1,000 bad lines
    stdin = '\n'.join(lines) + '\n'
    r = subprocess.run([MLP_NAMES, 'score', '--run', 'r', '-'], cwd=work, input=stdin, capture_output=True, text=True)
    one_line(r, 1, "standard input, line 8: name 'x7y' has '7'")
    assert r.stdout == ''  # the first bad line stops it before any output
    r = subprocess.run([MLP_NAMES, 'score', '--run', 'r', '--skip-bad', '-'], cwd=work, input=stdin,
                       capture_output=True, text=True)
    line = one_line(r, 0, 'skipped 1,000 bad names: line 8, line 28, line 48', 'and 990 more', "(the first: name 'x7y'")
    assert len(r.stdout.splitlines()) == 19_000 and line.count('line ') == 10


# 7. A huge alphabet trains after one warning line that says what it costs; "1 word is too few".
def test_huge_alphabet_warns(work):
    cjk = [chr(c) for c in range(0x4e00, 0x4e00 + 1500)]  # every one used: the first letter of a word
    (work / 'cjk.txt').write_text('\n'.join(cjk[i % 1500] + cjk[i * 7 % 1500] for i in range(3000)) + '\n')
    r = mlp('train', '--run', 'cjk', '--data', 'cjk.txt', '--steps', 5, '--quiet', cwd=work)
    assert r.returncode == 0, r.stderr
    line = one_line(r, 0, 'warning: the data has 1,500 different letters', 'training and sampling are slow')
    assert f'{1501 * (10 + 100 + 1):,} weights' in line  # its embedding, and its output layer's rows and biases
    (work / 'one.txt').write_text('emma\n')
    one_line(mlp('train', '--run', 'one', '--data', 'one.txt', cwd=work), 1, '1 word is too few')


# 4b. The same, made certain: every module the command line imports at its top is imported while Ctrl-C is held, so
#     no moment of the import can end in a traceback (one import after the hold once did, at 1.3 s on a slow start).
def test_every_top_level_import_is_under_the_hold():
    import mlp_names.cli as cli
    lines = Path(cli.__file__).read_text(encoding='utf-8').splitlines()
    released = next(i for i, l in enumerate(lines) if l.strip() == 'signal.signal(signal.SIGINT, signal.default_int_handler)')
    late = [l for l in lines[released:] if l.startswith(('import ', 'from '))]
    assert late == [], late


# 4b. Ctrl-C while an extension module initialises (matplotlib's, as plot saves its first graph)
#     reaches the command as that module's ImportError, caused by the KeyboardInterrupt: still one
#     line and status 130. Any other ImportError keeps its traceback, as a bug should.
def test_an_interrupt_inside_an_import_is_an_interrupt(monkeypatch, capsys):
    from mlp_names import cli as cli_module

    def interrupted_import(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise ImportError('initialization failed') from e

    monkeypatch.setitem(cli_module.COMMANDS, 'plot', interrupted_import)
    assert cli_module.main(['plot', '--run', 'r']) == 130
    assert capsys.readouterr().err == 'mlp-names plot: interrupted\n'

    def missing_module(args):
        raise ImportError('No module named nowhere')

    monkeypatch.setitem(cli_module.COMMANDS, 'plot', missing_module)
    with pytest.raises(ImportError, match='nowhere'):
        cli_module.main(['plot', '--run', 'r'])
