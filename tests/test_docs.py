"""The website (`make docs`, Sphinx + MyST-NB, docs/conf.py): build it into a temporary folder in strict mode and
check it without a browser.

Every chapter has a page; every link and image between the site's files resolves; no page loads a script or
stylesheet from the network; the code shown carries no nbdev directives; each exported module has its API
reference, methods added with @patch included; the search index and the name generator are shipped.
`make docs-check` is the browser-side check (not run here)."""
import ast, importlib.util, json, re, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
CHAPTERS = [p for p in sorted(NBS.glob('*.ipynb')) if p.name != 'index.ipynb']
EXTERNAL = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*:|//)')


class Page(HTMLParser):
    """What the checks need from one page: ids, links, scripts, stylesheets, the code cells' text."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.links, self.scripts, self.styles, self.code = set(), [], [], [], []
        self._depth = 0  # >0 inside a code cell's input
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'):
            self.ids.add(a['id'])
        self.links += [(tag, a[k]) for k in ('href', 'src') if a.get(k) is not None]
        if tag == 'script' and a.get('src'):
            self.scripts.append(a['src'])
        if tag == 'link' and 'stylesheet' in (a.get('rel') or '').split():
            self.styles.append(a.get('href', ''))
        if tag == 'div' and (self._depth or 'cell_input' in (a.get('class') or '').split()):
            self._depth += 1
            if self._depth == 1:
                self.code.append('')

    def handle_endtag(self, tag):
        if tag == 'div' and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.code[-1] += data


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('docs')
    cmd = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-E', '-q', '-b', 'html', '-c', 'docs',
           '-d', str(out / 'doctrees'), 'nbs', str(out / 'site')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'the strict Sphinx build failed:\n{r.stdout}\n{r.stderr}'
    return out / 'site'


@pytest.fixture(scope='module')
def pages(site) -> dict:
    return {p.resolve(): Page(p.read_text(encoding='utf-8')) for p in sorted(site.glob('*.html'))}


def test_every_chapter_has_a_page_in_the_chapter_list(site, pages):
    assert CHAPTERS, 'no chapter notebooks found in nbs/'
    missing = [nb.name for nb in CHAPTERS if not (site / f'{nb.stem}.html').is_file()]
    assert not missing, f'no page for {missing}'
    hrefs = {h for tag, h in pages[(site / 'index.html').resolve()].links if tag == 'a'}
    assert {f'{nb.stem}.html' for nb in CHAPTERS} <= hrefs and 'try.html' in hrefs


def test_internal_links_and_images_resolve(site, pages):
    broken = []
    for path, page in pages.items():
        for tag, url in page.links:
            parts = urlsplit(url)
            if EXTERNAL.match(url) or not parts.path:
                continue
            target = (path.parent / unquote(parts.path)).resolve()
            if site.resolve() not in target.parents or not target.is_file():
                broken.append(f'{path.name}: <{tag}> {url}')
    assert not broken, '\n'.join(broken)


def test_nothing_is_loaded_from_the_network(site, pages):
    remote = [f'{p.name}: {u}' for p, page in pages.items() for u in page.scripts + page.styles if EXTERNAL.match(u)]
    assert not remote, f'pages load from the network: {remote}'
    for f in list(site.rglob('*.css')) + [site / 'try.html', site / 'try.js']:
        text = f.read_text(encoding='utf-8')
        assert not re.search(r'(@import|url\()\s*["\']?(https?:)?//|\bfetch\(|XMLHttpRequest', text), f.name


def test_math_is_typeset_from_a_local_copy(site):
    assert (site / '_static' / 'mathjax' / 'tex-svg-full.js').is_file()
    assert '_static/mathjax/tex-svg-full.js' in (site / '03a_backward.html').read_text(encoding='utf-8')


def test_shown_code_has_no_nbdev_directives(pages):
    assert sum(len(p.code) for p in pages.values()) > 100  # the code cells were found
    for path, page in pages.items():
        for block in page.code:
            assert not re.search(r'^\s*(#\||#\s*NBVAL_)', block, re.M), f'{path.name} shows {block[:80]!r}'


def _exported_names(module: str) -> list:
    tree = ast.parse((ROOT / 'mlp_names' / f'{module}.py').read_text(encoding='utf-8'))
    return next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                and any(getattr(t, 'id', None) == '__all__' for t in n.targets))


def test_api_reference_of_each_exported_module(site, pages):
    for nb in CHAPTERS:
        text = nb.read_text(encoding='utf-8')
        module = re.search(r'#\|\s*default_exp\s+(\w+)', text).group(1)
        ids = pages[(site / f'{nb.stem}.html').resolve()].ids
        missing = [n for n in _exported_names(module) if f'mlp_names.{module}.{n}' not in ids]
        assert not missing, f'{nb.stem}.html: API reference lacks {missing}'


def test_patched_methods_are_documented_with_the_chapter_that_adds_them(pages, site):
    backward, layers = (pages[(site / f'{n}.html').resolve()].ids for n in ('03a_backward', '02_layers'))
    for cls in ('Linear', 'BatchNorm1d', 'LeakyRelu', 'Embedding', 'Flatten'):
        assert f'mlp_names.layers.{cls}.backward' in backward and f'mlp_names.layers.{cls}.backward' not in layers
    assert 'mlp_names.layers.Linear' in layers


def test_search_index_knows_every_chapter(site):
    text = (site / 'searchindex.js').read_text(encoding='utf-8')
    index = json.loads(text[text.index('(') + 1:text.rindex(')')])
    assert set(index['docnames']) >= {nb.stem for nb in CHAPTERS}
    assert 'backward' in index['terms'] and 'backward' in index['titleterms']


def test_the_name_generator_is_shipped(site):
    model = json.loads((site / 'model.json').read_text(encoding='utf-8'))
    assert model['format'] == 'mlp-names-export' and (site / 'try.js').is_file()
    assert 'src="try.js"' in (site / 'try.html').read_text(encoding='utf-8')


def _conf():
    spec = importlib.util.spec_from_file_location('docs_conf', ROOT / 'docs' / 'conf.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hidden_cells_and_directives_follow_nbdev():
    conf = _conf()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('#| hide\nsecret = 1'),
        nbformat.v4.new_code_cell('#| export\n# NBVAL_IGNORE_OUTPUT\ndef f(): pass\ns = "#| not a directive"'),
        nbformat.v4.new_code_cell('#| echo: false\nprint(2)', outputs=[nbformat.v4.new_output('stream', text='2\n')]),
        nbformat.v4.new_code_cell('#| output: false\nprint(3)'),
        nbformat.v4.new_markdown_cell('See [chapter 0](../nbs/00_vocab.ipynb) and [data](../data/README.md).'),
    ])
    shown = nbformat.reads(conf.notebook_as_nbdev_shows_it(nbformat.writes(nb), 'x', []), as_version=4).cells
    assert [c.source for c in shown] == ['def f(): pass\ns = "#| not a directive"', 'print(2)', 'print(3)',
                                         'See [chapter 0](00_vocab.ipynb) and '
                                         f'[data]({conf.REPO_FILES}/data/README.md).']
    assert [c.metadata.get('tags', []) for c in shown[:3]] == [[], ['remove-input'], ['remove-output']]


def test_the_guide_is_in_the_site_navigation():
    "nbs/guide.md is a page of the site: the home page's toctree lists it after the chapters (checked without a build)."
    conf = _conf()
    assert (NBS / 'guide.md').is_file()
    pages = conf.site_pages(NBS)
    assert pages == [nb.stem for nb in CHAPTERS] + ['guide']
    home = nbformat.reads(conf.notebook_as_nbdev_shows_it((NBS / 'index.ipynb').read_text(encoding='utf-8'), 'index',
                                                          pages), as_version=4)
    toc = home.cells[-1].source.splitlines()
    assert toc[0] == '```{toctree}' and toc[-2:] == ['guide', '```']


def test_the_sites_model_is_the_one_shipped_with_the_package(site):
    "try.html samples from mlp_names/pretrained.*, made into model.json by the build: one copy."
    from mlp_names.deeper import preset
    from mlp_names.sampling import Sampler, read_export
    assert not (ROOT / 'docs' / 'try' / 'model.json').exists(), 'the site keeps no model of its own'
    exported, shipped, best = read_export(site / 'model.json'), Sampler.pretrained(), preset('best')
    for k in ('block_size', 'merge', 'n_layers', 'n_embd', 'n_hidden', 'dropout', 'weight_decay'):
        assert getattr(exported['config'], k) == getattr(best, k), k
    assert exported['known'] == shipped.info['known']
    assert len(exported['model'].layers) == len(shipped.model.layers)
    for a, b in zip(exported['model'].layers, shipped.model.layers):
        assert type(a) is type(b)
        for key in ('weight', 'bias'):
            if getattr(b, key, None) is not None:
                assert torch.equal(getattr(a, key), getattr(b, key)), (a, key)
    script = (site / 'model.js').read_text(encoding='utf-8')
    text = (site / 'model.json').read_text(encoding='utf-8')
    assert script == f'window.MLP_NAMES_EXPORT = {text};\n'


def test_the_theme_is_the_pinned_book_theme():
    "The site's theme is sphinx-book-theme, pinned exactly in settings.ini with the pydata-sphinx-theme it requires."
    from importlib.metadata import version
    conf = _conf()
    assert conf.html_theme == 'sphinx_book_theme'
    pins = dict(r.split('==') for r in conf.SETTINGS['dev_requirements'].split() if '==' in r)
    for package in ('sphinx-book-theme', 'pydata-sphinx-theme', 'sphinx', 'myst-nb'):
        assert pins.get(package) == version(package), (package, pins.get(package), version(package))
    # no right-hand column: the page's sections are in the left sidebar, so code gets the width
    assert conf.html_theme_options['secondary_sidebar_items'] == []
    assert 'page-toc.html' in conf.html_sidebars['**']


def _guide_prose() -> list:
    "The guide's paragraphs of prose: blocks between blank lines, outside code fences, tables, lists and images."
    text = re.sub(r'```.*?```', '', (NBS / 'guide.md').read_text(encoding='utf-8'), flags=re.S)
    paras = [p.strip('\n') for p in text.split('\n\n') if p.strip()]
    return [p for p in paras if not re.match(r'\s*(\||- |!\[|#)', p)]


def test_the_guide_is_a_manual():
    "Paragraphs of at most 8 lines; the commands a reader types are there; no engineering log."
    guide = (NBS / 'guide.md').read_text(encoding='utf-8')
    long = [(len(p.splitlines()), p[:60]) for p in _guide_prose() if len(p.splitlines()) > 8]
    assert not long, f'paragraphs over 8 lines: {long}'
    for needed in ('make speedrun', 'make bench', 'make results', '--minutes', '--muon', '--bf16', '--autograd',
                   'make docs', 'make docs-check', 'bench/memory.py', 'MAX_DATA_BYTES', '## Speed: time to a target'):
        assert needed in guide, needed
    prose = '\n'.join(_guide_prose())
    for log_word in ('busier day', 'session', 'on the day of', "another machine's", 'helper', 'issue'):
        assert log_word not in prose, log_word
