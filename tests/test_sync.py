"""The committed files must be what the tools would write: the library is a fresh `nbdev_export` of the
notebooks, the notebooks are `nbdev_clean`ed, and README.md is generated from nbs/index.ipynb.

Each check runs the tool on a copy in a temporary directory, so it never touches the working tree."""
import shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _copy_project(dest: Path) -> Path:
    for name in ('settings.ini', 'setup.py', 'README.md', 'pyproject.toml'):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / 'nbs', dest / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
    shutil.copytree(ROOT / 'mlp_names', dest / 'mlp_names', ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run(['git', 'init', '-q'], cwd=dest, check=True)  # nbdev looks for the repository root
    return dest


def _files(folder: Path, pattern: str) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob(pattern))}


def _tool(name: str) -> str:
    exe = BIN / name
    return str(exe) if exe.exists() else name


def test_library_is_a_fresh_export(tmp_path):
    proj = _copy_project(tmp_path)
    subprocess.run([_tool('nbdev_export')], cwd=proj, check=True)
    # the export is then laid out by ruff (`make export`): nbdev leaves one blank line between cells
    subprocess.run([_tool('ruff'), 'format', '-q', 'mlp_names'], cwd=proj, check=True)
    committed, exported = _files(ROOT / 'mlp_names', '*.py'), _files(proj / 'mlp_names', '*.py')
    changed = sorted(k for k in committed.keys() | exported.keys() if committed.get(k) != exported.get(k))
    assert not changed, f'nbdev_export changes {changed}: run `make export` and commit mlp_names/'


def test_notebooks_are_clean(tmp_path):
    proj = _copy_project(tmp_path)
    subprocess.run([_tool('nbdev_clean')], cwd=proj, check=True)
    before, after = _files(ROOT / 'nbs', '*.ipynb'), _files(proj / 'nbs', '*.ipynb')
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert not changed, f'nbdev_clean changes {changed}: run `nbdev_clean` and commit the notebooks'


def test_readme_is_generated_from_index():
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_readme.py'), '--check'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_data_is_not_committed():
    tracked = subprocess.run(['git', 'ls-files', 'data'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked and not (ROOT / '.git').exists(): pytest.skip('not a git checkout')
    assert 'data/names.txt' not in tracked


def test_every_notebook_names_its_kernel():
    "JupyterLab opens a chapter without asking which kernel to use: the notebook names python3 (nbdev_clean keeps it)."
    import json
    missing = [p.name for p in sorted((ROOT / 'nbs').glob('*.ipynb'))
               if json.loads(p.read_text(encoding='utf-8'))['metadata'].get('kernelspec', {}).get('name') != 'python3']
    assert not missing, f'{missing} carry no python3 kernelspec: add it to the notebook metadata'


def test_readme_is_short_and_links_contributing_and_guide():
    "The README is the short version (at most 1,300 words); the manual is nbs/guide.md, the contributor's loop CONTRIBUTING.md."
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    words = len(readme.split())  # as `wc -w` counts
    assert words <= 1300, f'README.md has {words} words: move the details to nbs/guide.md or CONTRIBUTING.md'
    assert '](CONTRIBUTING.md)' in readme and (ROOT / 'CONTRIBUTING.md').is_file()
    assert '](nbs/guide.md)' in readme and (ROOT / 'nbs' / 'guide.md').is_file()


def test_ruff_is_clean():
    "The book's code and the library pass ruff's lint and format checks (pyproject.toml: lines at most 100)."
    for args in (['check', '-q'], ['format', '--check', '-q']):
        done = subprocess.run([_tool('ruff'), *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f'ruff {args[0]} fails (fix it, or `ruff format nbs`):\n' + done.stdout


# ruff's layout gives a statement a line of its own: 40 lines of the old dense style are about 60 now
EXPORT_CELL_LINES = 60


def test_export_cells_are_short():
    "Every exported cell is at most 60 lines, so that each piece of the library is read (and checked) on its own."
    import json
    long = []
    for path in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(path.read_text(encoding='utf-8'))['cells']):
            src = ''.join(cell['source'])
            if cell['cell_type'] == 'code' and src.startswith('#| export') and len(src.splitlines()) > EXPORT_CELL_LINES:
                long.append(f'{path.name} cell {i}: {len(src.splitlines())} lines')
    assert not long, f'export cells over {EXPORT_CELL_LINES} lines: ' + ', '.join(long)
