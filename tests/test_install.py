"""The package installs as users get it: `pip install .` (not editable) into a fresh virtual environment,
then imported and run from outside the checkout."""
import os, shutil, subprocess, sys, venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def test_pip_install_into_fresh_venv(tmp_path):
    env_dir = tmp_path / 'venv'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / 'bin' / 'python'
    # Let the fresh venv see this environment's site-packages through a .pth line, so that pip finds torch and
    # the other requirements already installed instead of downloading them. Directories added this way come
    # after the venv's own site-packages and their .pth files are not run, so this environment's editable
    # mlp_names stays invisible: the import below can only find what `pip install .` puts into the venv.
    here = _run(sys.executable, '-c', 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))', check=True)
    there = _run(py, '-c', 'import site; print(site.getsitepackages()[0])', check=True)
    (Path(there.stdout.strip()) / 'shared_requirements.pth').write_text(here.stdout.strip() + '\n')
    src = tmp_path / 'src'  # a copy, so that building leaves no files in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns('.git', '.venv', 'runs', 'data', '__pycache__', '*.egg-info',
                                                             'build', 'dist', '.ipynb_checkpoints'))
    install = _run(py, '-m', 'pip', 'install', '-q', '--no-build-isolation', src, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    code = ('import mlp_names; from mlp_names.layers import Linear, BatchNorm1d, LeakyRelu, Embedding, Flatten, '
            'Sequential; from mlp_names.adam import Adam; from mlp_names.vocab import Vocab; '
            'from mlp_names.dataset import split_words, build_dataset; from mlp_names.files import load_words; '
            'from mlp_names.backward import ManualStep, FlatAdam; from mlp_names.runs import start_run, load_run; '
            'from mlp_names.sampling import sample; '
            'import mlp_names.train, mlp_names.diagnostics, mlp_names.cli; print(mlp_names.__file__)')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    imported = _run(py, '-c', code, cwd=outside, env=env)
    assert imported.returncode == 0, imported.stderr
    assert Path(imported.stdout.strip()).is_relative_to(env_dir), imported.stdout
    version = _run(env_dir / 'bin' / 'mlp-names', '--version', cwd=outside, env=env)
    assert version.returncode == 0 and version.stdout.startswith('mlp-names '), version.stderr


def test_building_leaves_the_checkout_clean_and_warns_of_nothing(tmp_path):
    "Building a wheel writes no build/ or *.egg-info into the source tree, and setuptools prints no deprecation."
    src = tmp_path / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns('.git', '.venv', 'runs', 'data', '__pycache__', '*.egg-info',
                                                             'build', 'dist', '.ipynb_checkpoints', '_docs'))
    before = sorted(p.name for p in src.iterdir())
    built = _run(sys.executable, '-m', 'pip', 'wheel', '-v', '--no-deps', '--no-build-isolation', '-w', tmp_path / 'wheels', src,
                 cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert list((tmp_path / 'wheels').glob('mlp_names-*.whl'))
    assert sorted(p.name for p in src.iterdir()) == before
    assert 'deprecat' not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
