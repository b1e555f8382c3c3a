"""pytest configuration shared by the notebook tests (nbval) and tests/.

Notebooks are stored as `nbdev_clean` leaves them: every `execution_count` is null. nbval reads a null
count as "this cell was never run" and then refuses the cell's stored outputs ("Unrun reference cell has
outputs"). We keep `nbdev_clean` as the one way notebooks are stored, and tell nbval here that every code
cell of a stored notebook was run, so that every stored output is compared (strict mode, no cell skipped).
"""


def pytest_collection_modifyitems(items):
    for item in items:
        cell = getattr(item, 'cell', None)  # nbval's notebook-cell items carry their reference cell
        if cell is not None and cell.get('cell_type') == 'code' and cell.get('execution_count') is None:
            cell['execution_count'] = 1


def pytest_sessionstart(session):
    """The notebooks need names.txt in data/: provide it once, or stop at once with what to do."""
    import shutil
    from pathlib import Path
    import pytest
    target = Path(__file__).resolve().parent / 'data' / 'names.txt'
    if target.is_file(): return
    try:
        from mlp_names.files import atomic_write_bytes, names_path
        atomic_write_bytes(target, names_path().read_bytes())
    except Exception as e:
        pytest.exit(f'the tests need data/names.txt and could not get it: {e}', returncode=1)
