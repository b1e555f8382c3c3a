"""Sphinx configuration of the book's website (`make docs`): the notebooks of nbs/ as pages, from their stored
outputs (MyST-NB, nothing re-runs), the API reference of each chapter's module (autodoc), offline math (the
MathJax that django-static-mathjax ships) and Sphinx's own search. `try.html`, the name generator, is copied
as it is from docs/try/, with the model it samples from, made from the one shipped with the package
(model.json, also written as model.js).

nbdev's cell directives keep their meaning: before MyST-NB reads a notebook, `notebook_as_nbdev_shows_it`
drops `#| hide` cells, turns `echo: false` / `output: false` into MyST-NB's remove-input / remove-output tags,
and removes the `#|` lines (and nbval's markers) from the code shown.

Besides the notebooks, nbs/ holds one page written by hand in MyST Markdown, the guide (nbs/guide.md): the toctree
of the home page lists the chapters by file name, then the guide (`site_pages`). The links of both kinds of page
are written for the repository (`../bench/README.md`) and rewritten for the site (`repo_link`).
"""
import configparser, importlib, importlib.util, inspect, json, re, shutil, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the working tree's package
_cfg = configparser.ConfigParser(delimiters=['='], interpolation=None)
_cfg.read(ROOT / 'settings.ini', encoding='utf-8')
SETTINGS = dict(_cfg['DEFAULT'])
LIB = SETTINGS['lib_name']
REPO_FILES = f'{SETTINGS["git_url"]}/blob/{SETTINGS.get("branch", "main")}'

project = SETTINGS['title']
author = SETTINGS['author']
copyright = SETTINGS['copyright']
release = SETTINGS['version']

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.mathjax']
root_doc = 'index'
exclude_patterns = ['.ipynb_checkpoints', '**/.ipynb_checkpoints']
nb_execution_mode = 'off'  # the stored outputs are the pages' outputs
nb_output_folder = '_build/jupyter_execute'  # beside the site's folder, where MyST-NB writes the outputs' files
nb_merge_streams = True  # one block per cell's printed text
# a widget (chapter 06's panel) shows its text line: its scripts would come from the network and need a kernel
nb_mime_priority_overrides = [('html', 'application/vnd.jupyter.widget-view+json', None)]
nb_ipywidgets_js = {}
myst_enable_extensions = ['dollarmath', 'amsmath']
default_role = 'literal'  # `name` in a docstring is code, as in the notebooks' markdown
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
add_module_names = False

# sphinx-book-theme, the Jupyter Book theme (on pydata-sphinx-theme): everything but the page in the left sidebar,
# no right-hand column, so the text and the code get the rest of the width (docs/static/book.css)
html_theme = 'sphinx_book_theme'
html_title = project
# the first visit has no stored light/dark choice: the theme starts light (an empty mode is logged as an error)
html_context = {'default_mode': 'light'}
html_static_path = ['static']
html_css_files = ['book.css']
html_extra_path = ['try']
templates_path = ['templates']
# left: the title, the search box, the chapter list, the name generator, then the sections of this page
html_sidebars = {'**': ['navbar-logo.html', 'search-button-field.html', 'sbt-sidebar-nav.html', 'try_link.html',
                        'page-toc.html']}
html_theme_options = {
    'home_page_in_toc': True,
    'navbar_persistent': [],  # the search box is in the sidebar: no header bar above the page
    'show_navbar_depth': 1,
    'secondary_sidebar_items': [],  # no right-hand column: the page's sections are in the left sidebar
    'show_toc_level': 2,
    'use_download_button': False,  # the download button offers the page's source, which is not copied
    'use_fullscreen_button': False,
    'navigation_with_keys': False,
    'footer_content_items': ['copyright.html'],
}
html_show_sourcelink = False
html_copy_source = False
html_show_search_summary = False  # summaries are fetched from the pages, which file:// does not allow

# MathJax from a local copy: SVG output needs no web fonts, and "full" loads nothing later
mathjax_path = 'mathjax/tex-svg-full.js'
mathjax3_config = {
    'tex': {'inlineMath': [['$', '$'], ['\\(', '\\)']], 'processEscapes': True, 'packages': {'[-]': ['noundefined']}},
    'svg': {'fontCache': 'global'},
}

DIRECTIVE = re.compile(r'^\s*#\|\s?(.*)$')
NBVAL_MARK = re.compile(r'^\s*#\s*NBVAL_[A-Z_]+\s*$')
MARKDOWN_LINK = re.compile(r'!?\[([^\]]*)\]\(([^)\s]+)\)')
HIDE_CELL = {'hide', 'include: false'}
HIDE_INPUT = {'echo: false', 'hide_input'}
HIDE_OUTPUT = {'output: false', 'hide_output'}


def split_directives(source: str) -> tuple:
    """(directives, code): as in nbdev, directives are the `#|` lines before the first line of code."""
    lines, directives, start = source.splitlines(), [], 0
    while start < len(lines):
        m = DIRECTIVE.match(lines[start])
        if m:
            directives.append(' '.join(m.group(1).split()))
        elif lines[start].strip() and not NBVAL_MARK.match(lines[start]):
            break
        start += 1
    return directives, '\n'.join(lines[start:]).strip('\n')


def repo_link(match) -> str:
    """Links written for the repository: other notebooks become pages, other files the repository's copy."""
    text, url = match.group(1), match.group(2)
    if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:|^#', url):
        return match.group(0)
    if url.startswith('../nbs/'):
        return f'[{text}]({url[len("../nbs/"):]})'
    if url.startswith('../') and not match.group(0).startswith('!'):
        return f'[{text}]({REPO_FILES}/{url[3:]})'
    return match.group(0)


def api_reference(module: str) -> str:
    """MyST for the API reference of lib.module: each name of its `__all__`, and the methods it adds to classes of
    earlier modules with fastcore's @patch (which autodoc would otherwise show with the class)."""
    full = f'{LIB}.{module}'
    mod = importlib.import_module(full)
    lines = ['## API reference', '', f'The public names of `{full}`, read from the module itself.', '',
             '```{eval-rst}', f'.. automodule:: {full}', '']
    for name in getattr(mod, '__all__', []):
        obj = getattr(mod, name)
        if inspect.isclass(obj):
            lines += [f'.. autoclass:: {full}.{name}', '   :members:', '   :undoc-members:', '']
        elif callable(obj):
            lines += [f'.. autofunction:: {full}.{name}', '']
        else:
            lines += [f'.. autodata:: {full}.{name}', '']
    for cls, name in patched_methods(full):
        lines += [f'.. automethod:: {cls.__module__}.{cls.__qualname__}.{name}', '']
    return '\n'.join(lines + ['```'])


def patched_methods(full: str) -> list:
    found = []
    for mname, mod in sorted(sys.modules.items()):
        if not mname.startswith(f'{LIB}.') or mname == full or mod is None:
            continue
        for cls in vars(mod).values():
            if inspect.isclass(cls) and cls.__module__ == mname:
                found += [(cls, n) for n, f in vars(cls).items()
                          if not n.startswith('_') and getattr(f, '__module__', None) == full]
    return found


def notebook_as_nbdev_shows_it(text: str, docname: str, chapters: list) -> str:
    nb = nbformat.reads(text, as_version=4)
    nb.metadata.setdefault('language_info', {'name': 'python', 'pygments_lexer': 'ipython3'})  # nbdev_clean drops it
    cells, module = [], None
    for cell in nb.cells:
        directives, source = split_directives(cell.source)
        flags = {d.lower() for d in directives}
        module = next((d.split(None, 1)[1] for d in directives if d.startswith('default_exp ')), module)
        if flags & HIDE_CELL or (not source and not cell.get('outputs')):
            continue
        tags = cell.metadata.setdefault('tags', [])
        tags += ['remove-input'] * bool(flags & HIDE_INPUT or not source) + ['remove-output'] * bool(flags & HIDE_OUTPUT)
        if cell.cell_type == 'markdown':
            source = MARKDOWN_LINK.sub(repo_link, source)
        cell.source = source
        cells.append(cell)
    if module:
        cells.append(nbformat.v4.new_markdown_cell(api_reference(module)))
    if docname == root_doc:  # the chapter list of the sidebar and of previous/next
        toc = '\n'.join(['```{toctree}', ':hidden:', ':maxdepth: 2', ''] + chapters + ['```'])
        cells.append(nbformat.v4.new_markdown_cell(toc))
    nb.cells = cells
    return nbformat.writes(nb)


PAGES_AFTER_CHAPTERS = ['guide']  # MyST pages of nbs/ written by hand (nbs/guide.md), after the chapters


def site_pages(srcdir) -> list:
    """The pages of the toctree, in order: the chapters (every notebook but the home page, by file name), then the
    hand-written MyST pages."""
    chapters = sorted(p.stem for p in Path(srcdir).glob('*.ipynb') if p.stem != root_doc)
    return chapters + [name for name in PAGES_AFTER_CHAPTERS if (Path(srcdir) / f'{name}.md').is_file()]


def on_source_read(app, docname, source):
    suffix = Path(app.env.doc2path(docname)).suffix
    if suffix == '.ipynb':
        source[0] = notebook_as_nbdev_shows_it(source[0], docname, site_pages(app.srcdir))
    elif suffix == '.md':  # links written for the repository, as in the notebooks' markdown
        source[0] = MARKDOWN_LINK.sub(repo_link, source[0])


def skip_patched(app, what, name, obj, skip, options):
    """A class's methods added by a later chapter (fastcore's @patch) are documented with that chapter."""
    if what != 'class':
        return None
    func = getattr(obj, 'fget', obj)
    mod = sys.modules.get(getattr(func, '__module__', None) or '')
    owner = getattr(mod, getattr(func, '__qualname__', '').split('.')[0], None) if mod else None
    if inspect.isclass(owner) and owner.__module__ != func.__module__:
        return True
    return None


def docstring_as_text(app, what, name, obj, options, lines):
    """The docstrings are written like the notebooks' markdown, not reStructuredText: outside `code`, the
    characters that reStructuredText reads as markup (|x| a substitution, name_ a link) are plain text."""
    if what == 'data':
        lines[:] = []  # a constant has no docstring of its own: what autodoc finds is its type's (dict, str)
    for i, line in enumerate(lines):
        parts = line.split('`')
        lines[i] = '`'.join(re.sub(r'([|*_\\])', r'\\\1', p) if k % 2 == 0 else p for k, p in enumerate(parts))


def copy_mathjax(app, exception):
    if exception or app.builder.format != 'html':
        return
    spec = importlib.util.find_spec('mathjax')
    base = Path(spec.submodule_search_locations[0]) / 'static' / 'mathjax' if spec else None
    if not base or not (base / 'es5' / 'tex-svg-full.js').is_file():
        raise RuntimeError('MathJax not found: install django-static-mathjax (`make setup-dev` does)')
    dest = Path(app.outdir) / '_static' / 'mathjax'
    dest.mkdir(parents=True, exist_ok=True)
    for name in ('es5/tex-svg-full.js', 'LICENSE'):
        shutil.copyfile(base / name, dest / Path(name).name)


def model_script(app, exception):
    """try.html's model, made from the model shipped with the package (mlp_names/pretrained.*, the
    one copy kept): model.json in the export format of chapter 06, and the same as a script
    (model.js), since a file:// page may not read other files."""
    if exception or app.builder.format != 'html':
        return
    from mlp_names.sampling import Sampler, export_model
    text = json.dumps(export_model(Sampler.pretrained()), separators=(',', ':'))
    (Path(app.outdir) / 'model.json').write_text(text, encoding='utf-8')
    script = f'window.MLP_NAMES_EXPORT = {text};\n'
    (Path(app.outdir) / 'model.js').write_text(script, encoding='utf-8')


def setup(app):
    app.connect('source-read', on_source_read)
    app.connect('autodoc-skip-member', skip_patched)
    app.connect('autodoc-process-docstring', docstring_as_text)
    app.connect('build-finished', copy_mathjax)
    app.connect('build-finished', model_script)
