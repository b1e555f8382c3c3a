"""The model shipped with the package (chapter 06, `Sampler.pretrained`; chapter 07, the commands
without a run): it installs with the wheel and works with no names.txt anywhere, its recorded losses
are what `evaluate` computes from it, a changed byte is refused, a run of the user's own wins, and
its ONNX form gives our log-probabilities.
"""

import json, os, re, shutil, subprocess, sys, venv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mlp_names.deeper import DeeperConfig
from mlp_names.sampling import PRETRAINED, Sampler, as_sampler, read_weights

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOTICE = 'using the model shipped with mlp_names'
ONNX_TOL = 1e-4  # measured: about 1e-5 between onnxruntime and torch (chapter 06)
IGNORED = shutil.ignore_patterns(
    '.git',
    '.venv',
    'runs',
    'data',
    '__pycache__',
    '*.egg-info',
    'build',
    'dist',
    '.ipynb_checkpoints',
    '_docs',
    '_build',
)


def _run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def _no_data_env(tmp_path) -> dict:
    "No names.txt to be found: HOME, the cache and MLP_NAMES_DATA point at empty folders."
    dirs = {k: tmp_path / k.lower() for k in ('HOME', 'XDG_CACHE_HOME', 'MLP_NAMES_DATA')}
    for d in dirs.values():
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'MLP_NAMES_DATA')}
    return {**env, **{k: str(v) for k, v in dirs.items()}}


@pytest.fixture(scope='module')
def words_file(tmp_path_factory) -> Path:
    from mlp_names.files import load_words

    path = tmp_path_factory.mktemp('words') / 'names.txt'
    path.write_text('\n'.join(load_words()[:3000]) + '\n')
    return path


@pytest.fixture(scope='module')
def small_run(tmp_path_factory, words_file) -> Path:
    "A run of the user's own: 200 steps of the default model on 3,000 names."
    run_dir = tmp_path_factory.mktemp('run') / 'mine'
    r = _run(
        BIN / 'mlp-names',
        'train',
        '--run',
        run_dir,
        '--data',
        words_file,
        '--steps',
        200,
        '--quiet',
    )
    assert r.returncode == 0, r.stderr
    return run_dir


def test_the_wheel_brings_a_model_that_works_offline_without_data(tmp_path):
    src = tmp_path / 'src'  # a copy, so that building leaves no files in the checkout
    shutil.copytree(ROOT, src, ignore=IGNORED)
    built = _run(
        sys.executable,
        '-m',
        'pip',
        'wheel',
        '-q',
        '--no-deps',
        '--no-build-isolation',
        '-w',
        tmp_path / 'wheels',
        src,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / 'wheels').glob('mlp_names-*.whl')
    size = wheel.stat().st_size
    print(f'{wheel.name}: {size:,} bytes')
    assert size < 8_000_000, size
    env_dir = tmp_path / 'venv'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / 'bin' / 'python'
    # torch and the other requirements from this environment, seen through a .pth line (as
    # test_install.py does), so that nothing is downloaded; its .pth files are not run, so this
    # checkout's editable mlp_names stays invisible
    here = _run(
        sys.executable,
        '-c',
        'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))',
        check=True,
    )
    there = _run(py, '-c', 'import site; print(site.getsitepackages()[0])', check=True)
    (Path(there.stdout.strip()) / 'shared_requirements.pth').write_text(here.stdout.strip() + '\n')
    install = _run(py, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', wheel, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    metadata = _run(
        py,
        '-c',
        "from importlib.metadata import requires; print(requires('mlp_names'))",
        cwd=tmp_path,
    )
    assert 'safetensors' in metadata.stdout, (
        metadata.stdout + metadata.stderr
    )  # the reader of the shipped weights
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    env = _no_data_env(tmp_path)
    cli = env_dir / 'bin' / 'mlp-names'

    sampled = _run(cli, 'sample', '-n', 10, '--prefix', 'ma', '--novel', cwd=outside, env=env)
    assert sampled.returncode == 0, sampled.stderr
    names = sampled.stdout.split()
    assert len(names) == 10 and all(re.fullmatch('ma[a-z]*', nm) for nm in names), names
    notice, seed = sampled.stderr.splitlines()  # the shipped model said, then the fresh seed (issue 35)
    assert NOTICE in notice and 'preset best, val 1.92' in notice
    assert re.fullmatch(r'seed (\d+): repeat with --seed \1', seed), seed

    scored = _run(cli, 'score', '--json', 'emma', 'zzxq', cwd=outside, env=env)
    assert scored.returncode == 0, scored.stderr
    emma, zzxq = json.loads(scored.stdout)
    assert (
        emma['percentile'] > 50 > zzxq['percentile']
        and zzxq['nats_per_char'] > emma['nats_per_char']
    )
    shown = _run(cli, 'score', 'emma', 'zzxq', cwd=outside, env=env).stdout
    assert 'of the validation names' in shown and '%' in shown

    code = (
        'import mlp_names; from mlp_names.sampling import Sampler, sample, score; '
        's = Sampler.pretrained(); '
        "print(mlp_names.__file__); print(' '.join(sample(s, n=5, seed=0, prefix='ja'))); "
        "print(score(s, ['emma'])[0]['percentile'])"
    )
    py_run = _run(py, '-c', code, cwd=outside, env=env)
    assert py_run.returncode == 0, py_run.stderr
    where, names, pct = py_run.stdout.splitlines()
    assert Path(where).is_relative_to(env_dir), where
    assert len(names.split()) == 5 and all(nm.startswith('ja') for nm in names.split())
    assert 0 <= float(pct) <= 100
    assert not list(outside.iterdir()) and not any(
        p.is_file() for p in tmp_path.joinpath('xdg_cache_home').rglob('*')
    )


def test_evaluate_recomputes_the_recorded_losses_from_the_shipped_file(tmp_path):
    "`mlp-names evaluate`, no run in the folder: the shipped model, on names.txt's seed-42 split."
    names = ROOT / 'data' / 'names.txt'
    if not names.is_file():
        pytest.skip('data/names.txt is not here (make setup puts it there)')
    env = {**_no_data_env(tmp_path), 'MLP_NAMES_DATA': str(names)}
    r = _run(BIN / 'mlp-names', 'evaluate', '--json', cwd=tmp_path, env=env)
    assert r.returncode == 0 and NOTICE in r.stderr, r.stderr
    recorded = json.loads(PRETRAINED.read_text())['losses']
    recomputed = json.loads(r.stdout)
    assert round(recomputed['val'], 4) == round(recorded['val'], 4)  # the Done-when: val, to 4 decimals
    assert all(abs(recomputed[k] - recorded[k]) < 1e-5 for k in recorded)  # float32: rounding only
    assert abs(recorded['val'] - 1.9228) < 5e-4  # bench/results.md: the best run in float32


def _package_copy(tmp_path) -> Path:
    "A copy of the mlp_names package in a folder of its own, to damage (PYTHONPATH=that folder)."
    where = tmp_path / 'pkg'
    shutil.copytree(
        PRETRAINED.parent, where / 'mlp_names', ignore=shutil.ignore_patterns('__pycache__')
    )
    return where


def test_a_changed_byte_in_the_shipped_files_is_refused_in_one_line(tmp_path):
    pkg = _package_copy(tmp_path)
    env = {**_no_data_env(tmp_path), 'PYTHONPATH': str(pkg)}
    main = [sys.executable, '-c', 'import sys; from mlp_names.cli import main; sys.exit(main())']
    check = _run(
        sys.executable, '-c', 'import mlp_names; print(mlp_names.__file__)', env=env, cwd=tmp_path
    )
    assert Path(check.stdout.strip()).is_relative_to(pkg), check.stdout
    g = torch.Generator().manual_seed(1)
    for name in ('pretrained.safetensors', 'pretrained.json'):
        path = pkg / 'mlp_names' / name
        good = path.read_bytes()
        for _ in range(3):
            i = torch.randint(len(good), (1,), generator=g).item()
            bad = bytearray(good)
            bad[i] ^= torch.randint(1, 256, (1,), generator=g).item()
            path.write_bytes(bad)
            for args in (('sample', '-n', 3), ('score', 'emma')):
                r = _run(*main, *args, cwd=tmp_path, env=env)
                lines = r.stderr.splitlines()
                assert r.returncode == 1 and r.stdout == '' and 'Traceback' not in r.stderr, (
                    name,
                    i,
                    r.stderr,
                )
                assert (
                    len(lines) == 1
                    and 'damaged model file' in lines[0]
                    and 'it was not used' in lines[0]
                ), lines
                assert (
                    lines[0].startswith(f'mlp-names {args[0]}: error: ')
                    and 'reinstall mlp_names' in lines[0]
                )
        path.write_bytes(good)
    assert _run(*main, 'sample', '-n', 3, cwd=tmp_path, env=env).returncode == 0
    (pkg / 'mlp_names' / 'pretrained.safetensors').unlink()
    r = _run(*main, 'sample', '-n', 3, cwd=tmp_path, env=env)
    assert (
        r.returncode == 1 and len(r.stderr.splitlines()) == 1 and 'is missing' in r.stderr
    ), r.stderr


def test_a_run_of_ones_own_wins_over_the_shipped_model(tmp_path, small_run, words_file):
    from mlp_names.runs import load_run
    from mlp_names.sampling import sample

    env = _no_data_env(tmp_path)
    own = sample(load_run(small_run), n=5, seed=0)
    r = _run(BIN / 'mlp-names', 'sample', '--run', small_run, '-n', 5, '--seed', 0, cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.split() == own and r.stderr == '', r.stderr
    shutil.copytree(
        small_run, tmp_path / 'runs' / 'names'
    )  # runs/names, where the commands look without --run
    r = _run(BIN / 'mlp-names', 'sample', '-n', 5, '--seed', 0, cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.split() == own and r.stderr == '', r.stderr
    r = _run(
        BIN / 'mlp-names', 'score', '--run', tmp_path / 'nowhere', 'emma', cwd=tmp_path, env=env
    )
    assert r.returncode == 1 and 'no run here' in r.stderr and NOTICE not in r.stderr, r.stderr


def _gap(onnx_file: Path, sampler: Sampler) -> float:
    "Largest gap between onnxruntime's log-probabilities and ours (name starts, random contexts)."
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    contexts = torch.randint(
        0,
        len(sampler.vocab),
        (3000, sampler.block_size),
        generator=torch.Generator().manual_seed(0),
    )
    contexts[:1000, :-3] = 0  # the starts of names: mostly the boundary
    theirs = torch.from_numpy(session.run(None, {'context': contexts.numpy()})[0])
    with torch.no_grad():
        ours = F.log_softmax(sampler.net(contexts), dim=1)
    assert theirs.shape == ours.shape == (3000, len(sampler.vocab))
    return (theirs - ours).abs().max().item()


def test_onnx_exports_give_our_log_probabilities(tmp_path, small_run):
    from mlp_names.runs import load_run

    env = _no_data_env(tmp_path)
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--format',
        'onnx',
        '--out',
        'shipped.onnx',
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0 and NOTICE in r.stderr, r.stderr
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--run',
        small_run,
        '--format',
        'onnx',
        '--out',
        'mine.onnx',
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0 and r.stderr == '', r.stderr
    gaps = [
        _gap(tmp_path / 'shipped.onnx', Sampler.pretrained()),
        _gap(tmp_path / 'mine.onnx', as_sampler(load_run(small_run))),
    ]
    assert max(gaps) < ONNX_TOL, gaps


def test_the_guides_onnx_example_samples_a_name(tmp_path):
    "The guide's ten lines that sample a name from an ONNX file (onnxruntime, NumPy), as written."
    guide = (ROOT / 'nbs' / 'guide.md').read_text(encoding='utf-8')
    (code,) = [
        block
        for block in re.findall(r'```python\n(.*?)```', guide, re.S)
        if 'InferenceSession' in block
    ]
    assert 8 <= len(code.strip().splitlines()) <= 14
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--format',
        'onnx',
        '--out',
        'best.onnx',
        cwd=tmp_path,
        env=_no_data_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    out = _run(sys.executable, '-c', code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r'[a-z]+\n', out.stdout), out.stdout


def test_safetensors_exports_keep_the_layout_of_the_shipped_model(tmp_path, small_run, words_file):
    from mlp_names.runs import load_run
    from mlp_names.sampling import next_char_probs

    env = _no_data_env(tmp_path)
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--format',
        'safetensors',
        '--out',
        'copy.safetensors',
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'copy.safetensors').read_bytes() == PRETRAINED.with_suffix(
        '.safetensors'
    ).read_bytes()
    copy, shipped = json.loads((tmp_path / 'copy.json').read_text()), json.loads(
        PRETRAINED.read_text()
    )
    same = (
        'weights_sha256',
        'dtype',
        'vocab',
        'block_size',
        'layers',
        'losses',
        'reference',
        'known',
        'source',
    )
    assert {k: copy[k] for k in same} == {k: shipped[k] for k in same}
    # the same settings; an export writes every setting of this version (settings added since the
    # shipped record was made, e.g. `muon`, with their defaults)
    assert DeeperConfig.from_dict(copy['config']) == DeeperConfig.from_dict(shipped['config'])
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--run',
        small_run,
        '--format',
        'safetensors',
        '--out',
        'mine.safetensors',
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    mine, run = read_weights(tmp_path / 'mine.json'), load_run(small_run)
    for card in (
        json.loads((tmp_path / 'mine.json').read_text()),
        shipped,
    ):  # the layout: tensors named by layer
        for i, layer in enumerate(card['layers']):
            assert all(
                v == f'layers.{i}.{k}'
                for k, v in layer.items()
                if k in ('weight', 'bias') and v is not None
            ), layer
    contexts = torch.randint(
        0, len(run.vocab), (500, run.config.block_size), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.allclose(
            next_char_probs(mine.net(contexts)),
            next_char_probs(as_sampler(run).net(contexts)),
            atol=1e-6,
        )
    r = _run(
        BIN / 'mlp-names',
        'export',
        '--run',
        small_run,
        '--format',
        'safetensors',
        '--out',
        'mine.json',
        cwd=tmp_path,
        env=env,
    )
    assert (
        r.returncode == 1 and 'a safetensors export is named NAME.safetensors' in r.stderr
    ), r.stderr
