"""The GitHub Actions workflow a fork runs: valid for actionlint, and running the README's test command on a
CPU-only torch, Python 3.11, with pip's cache keyed on the files that pin the dependencies."""
import re, shutil, subprocess, sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / '.github' / 'workflows' / 'test.yaml'


def _actionlint() -> str:
    exe = Path(sys.executable).parent / 'actionlint'
    return str(exe) if exe.exists() else (shutil.which('actionlint') or 'actionlint')


def test_actionlint_passes():
    r = subprocess.run([_actionlint(), '-no-color', str(WORKFLOW)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    "The check can fail: a misspelt input and an undefined expression are reported."
    bad = WORKFLOW.read_text().replace('python-version:', 'python-versio:') + '      - run: echo ${{ matrix.nothing }}\n'
    (tmp_path / 'bad.yaml').write_text(bad)
    r = subprocess.run([_actionlint(), '-no-color', str(tmp_path / 'bad.yaml')], capture_output=True, text=True)
    assert r.returncode == 1 and 'python-versio' in r.stdout and 'nothing' in r.stdout, r.stdout + r.stderr


def test_workflow_runs_the_readme_test_command():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert set(flow[True]) == {'push', 'pull_request'}  # YAML 1.1 reads the key `on` as True
    (job,) = flow['jobs'].values()
    assert job['runs-on'] == 'ubuntu-latest'
    setup = next(s for s in job['steps'] if s.get('uses', '').startswith('actions/setup-python'))
    assert str(setup['with']['python-version']) == '3.11' and setup['with']['cache'] == 'pip'
    assert setup['with']['cache-dependency-path'].split() == ['settings.ini', 'setup.py']
    runs = [s['run'] for s in job['steps'] if 'run' in s]
    readme = (ROOT / 'README.md').read_text()
    test_command = re.search(r'^make test\b', readme, re.M)
    assert test_command, 'the README names its test command'
    assert runs == ['make test TORCH_INDEX=https://download.pytorch.org/whl/cpu']
