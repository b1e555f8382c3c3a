"""Imports go one way: a module of mlp_names imports only modules of chapters before its own, at module level or
inside a function, and there is no import circle. A chapter's place is its notebook's name (00_vocab < 01_dataset <
01a_files < ... < 07_cli); each module names its notebook in its header ("File to edit: ../nbs/NN_name.ipynb")."""
import ast, re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / 'mlp_names'


def chapters() -> dict[str, str]:
    "Module name -> the notebook it is exported from."
    found = {}
    for path in sorted(PKG.glob('*.py')):
        if m := re.search(r'File to edit: \.\./nbs/([\w.]+)\.ipynb', path.read_text(encoding='utf-8')):
            found[path.stem] = m.group(1)
    return found


def imported_modules(path: Path) -> list[tuple[int, str]]:
    "(line, module of mlp_names) of every import in `path`, wherever it stands: module level or inside a function."
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level == 1: names = [base] if base else [a.name for a in node.names]       # from .x / from . import x
            elif base == 'mlp_names': names = [a.name for a in node.names]                     # from mlp_names import x
            elif base.startswith('mlp_names.'): names = [base.split('.', 1)[1]]
            else: continue
            out += [(node.lineno, n.split('.')[0]) for n in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split('.')[1]) for a in node.names if a.name.startswith('mlp_names.')]
    return out


def test_every_module_is_exported_from_a_chapter():
    modules = {p.stem for p in PKG.glob('*.py')} - {'__init__', '_modidx'}
    assert modules == set(chapters()), modules ^ set(chapters())


def test_imports_only_earlier_chapters():
    order, bad = chapters(), []
    for module, notebook in order.items():
        for line, other in imported_modules(PKG / f'{module}.py'):
            if other in order and other != module and not order[other] < notebook:
                bad.append(f'mlp_names/{module}.py:{line} ({notebook}) imports {other} ({order[other]})')
    assert not bad, 'imports of later chapters:\n' + '\n'.join(bad)


def test_no_import_circle():
    order = chapters()
    graph = {m: {o for _, o in imported_modules(PKG / f'{m}.py') if o in order and o != m} for m in order}
    done, on_path = set(), []
    def visit(m):
        if m in on_path: pytest.fail('import circle: ' + ' -> '.join(on_path[on_path.index(m):] + [m]))
        if m in done: return
        on_path.append(m)
        for o in sorted(graph[m]): visit(o)
        on_path.pop(); done.add(m)
    for m in sorted(graph): visit(m)


def test_the_checker_catches_a_late_import(tmp_path):
    "The same parse on a module that reaches forward inside a function, as train.py once did."
    (tmp_path / 'train.py').write_text('def build_model():\n    from .deeper import build_tree\n    return build_tree\n')
    assert imported_modules(tmp_path / 'train.py') == [(2, 'deeper')]
    (tmp_path / 'runs.py').write_text('import mlp_names.deeper\nfrom mlp_names import sampling, vocab\n')
    assert imported_modules(tmp_path / 'runs.py') == [(1, 'deeper'), (2, 'sampling'), (2, 'vocab')]
