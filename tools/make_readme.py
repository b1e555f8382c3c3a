"""Write README.md from nbs/index.ipynb (no quarto needed).

`python tools/make_readme.py` writes it; `--check` exits non-zero if README.md differs from what it
would write. Paths relative to nbs/ (`../github_graphs/...`) become relative to the repository root.
"""
import argparse, re, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent
HEADER = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'


def render() -> str:
    nb = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.lstrip().startswith('#| hide')]
    body, _ = MarkdownExporter(exclude_output_prompt=True).from_notebook_node(nb)
    body = re.sub(r'\]\(\.\./', '](', body)           # markdown links and images
    body = re.sub(r'src="\.\./', 'src="', body)        # html images
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    return HEADER + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--check', action='store_true', help='only check that README.md is up to date')
    args = ap.parse_args()
    text, readme = render(), ROOT / 'README.md'
    if args.check:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            sys.exit('README.md is not in sync with nbs/index.ipynb: run `python tools/make_readme.py`')
        return
    readme.write_text(text, encoding='utf-8')


if __name__ == '__main__':
    main()
