"""The website (`make docs`): build it into a temporary folder and check every page without a browser.

Every chapter has a page; every link and image between the site's files resolves, fragments included; no
page loads a script or stylesheet from the network; the code shown carries no nbdev directives; each
exported module has its API reference. `make docs-check` is the browser-side check (not run here)."""
import ast, importlib.util, re, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
CHAPTERS = [p for p in sorted(NBS.glob('*.ipynb')) if p.name != 'index.ipynb']
EXTERNAL = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*:|//)')


class Page(HTMLParser):
    """What the checks need from one page: ids, links, images, scripts, stylesheets, shown code."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.links, self.scripts, self.styles, self.code, self.text = set(), [], [], [], [], []
        self._code_depth = 0  # >0 while inside a code cell's input area
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'):
            self.ids.add(a['id'])
        if tag == 'a' and a.get('name'):
            self.ids.add(a['name'])
        for attr in ('href', 'src'):
            if a.get(attr) is not None:
                self.links.append((tag, a[attr]))
        if tag == 'script' and a.get('src'):
            self.scripts.append(a['src'])
        if tag == 'link' and 'stylesheet' in (a.get('rel') or '').split():
            self.styles.append(a.get('href', ''))
        if tag == 'div':
            if self._code_depth:
                self._code_depth += 1
            elif 'input_area' in (a.get('class') or '').split():
                self._code_depth = 1
                self.code.append('')

    def handle_endtag(self, tag):
        if tag == 'div' and self._code_depth:
            self._code_depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._code_depth:
            self.code[-1] += data


@pytest.fixture(scope='module')
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs').resolve() / 'site'
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'build_docs.py'), '--out', str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'build_docs.py failed:\n{r.stdout}\n{r.stderr}'
    return out, r.stderr


@pytest.fixture(scope='module')
def site(build) -> Path:
    return build[0]


@pytest.fixture(scope='module')
def pages(site) -> dict:
    return {p.resolve(): Page(p.read_text(encoding='utf-8')) for p in sorted(site.rglob('*.html'))}


def test_the_build_warns_of_nothing(build):
    warnings = re.findall(r'^warning: .*', build[1], re.M)  # e.g. a link to a file that does not exist
    assert not warnings, '\n'.join(warnings)


def test_every_chapter_has_a_page(site):
    assert CHAPTERS, 'no chapter notebooks found in nbs/'
    assert (site / 'index.html').is_file()
    missing = [nb.name for nb in CHAPTERS if not (site / f'{nb.stem}.html').is_file()]
    assert not missing, f'no page for {missing}'


def test_every_page_lists_every_chapter(site, pages):
    for path, page in pages.items():
        hrefs = {href for tag, href in page.links if tag == 'a'}
        missing = [nb.stem for nb in CHAPTERS if f'{nb.stem}.html' not in hrefs]
        assert not missing, f'{path.name} does not link to {missing}'


def test_chapters_link_previous_and_next(site):
    order = ['index'] + [nb.stem for nb in CHAPTERS]
    for i, stem in enumerate(order):
        text = (site / f'{stem}.html').read_text(encoding='utf-8')
        if i > 0:
            assert f'href="{order[i - 1]}.html" rel="prev"' in text, f'{stem}.html: no link to the previous page'
        if i + 1 < len(order):
            assert f'href="{order[i + 1]}.html" rel="next"' in text, f'{stem}.html: no link to the next page'


def test_internal_links_and_images_resolve(site, pages):
    broken = []
    for path, page in pages.items():
        for tag, url in page.links:
            if EXTERNAL.match(url):
                continue
            parts = urlsplit(url)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if site not in target.parents or not target.is_file():
                broken.append(f'{path.name}: <{tag}> {url} (no such file in the site)')
            elif parts.fragment and target.suffix == '.html' and target in pages \
                    and unquote(parts.fragment) not in pages[target].ids:
                broken.append(f'{path.name}: <{tag}> {url} (no id {parts.fragment!r} there)')
    assert not broken, '\n'.join(broken)


def test_no_scripts_or_styles_from_the_network(site, pages):
    remote = [f'{p.name}: {u}' for p, page in pages.items() for u in page.scripts + page.styles if EXTERNAL.match(u)]
    assert not remote, f'pages load from the network: {remote}'
    for css in site.rglob('*.css'):
        text = css.read_text(encoding='utf-8')
        assert not re.search(r'(@import|url\()\s*["\']?(https?:)?//', text), f'{css.name} loads from the network'


def test_math_is_typeset_from_a_local_copy(site, pages):
    assert (site / 'assets' / 'mathjax' / 'tex-svg-full.js').is_file()
    for path, page in pages.items():
        assert any('mathjax' in s for s in page.scripts), f'{path.name} does not load MathJax'


def test_shown_code_has_no_nbdev_directives(pages):
    for path, page in pages.items():
        for block in page.code:
            assert not re.search(r'^\s*#\|', block, re.M), f'{path.name} shows a directive: {block[:80]!r}'


def _exported_names(module: str) -> list:
    tree = ast.parse((ROOT / 'mlp_names' / f'{module.replace(".", "/")}.py').read_text(encoding='utf-8'))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def test_api_reference_of_each_exported_module(site, pages):
    checked = 0
    for nb in CHAPTERS:
        cells = nbformat.read(nb, as_version=4).cells
        exp = [m.group(1) for c in cells for m in [re.search(r'^#\|\s*default_exp\s+(\S+)', c.source, re.M)] if m]
        if not exp:
            continue
        ids = pages[site / f'{nb.stem}.html'].ids
        assert 'api-reference' in ids, f'{nb.stem}.html has no API reference'
        missing = [n for n in _exported_names(exp[0]) if f'api-{n}' not in ids]
        assert not missing, f'{nb.stem}.html: API reference lacks {missing}'
        checked += 1
    assert checked, 'no chapter exports a module'


def test_pages_show_the_stored_outputs(site, pages):
    bd = _build_module()
    for nb_path in CHAPTERS:
        nb = nbformat.read(nb_path, as_version=4)
        bd.prepare(nb)  # what the site shows: hidden cells left out
        outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs]
        page = pages[site / f'{nb_path.stem}.html']
        text = ''.join(page.text)
        images = [u for tag, u in page.links if tag == 'img' and u.startswith('figures/')]
        assert len(images) == sum('image/png' in o.get('data', {}) for o in outputs), nb_path.name
        for o in outputs:
            if o.output_type == 'stream' and o.text.strip():
                line = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', o.text).strip().splitlines()[0].strip()  # no ANSI codes
                assert line in text, f'{nb_path.stem}.html lacks the output {line!r}'


def _build_module():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT / 'tools' / 'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hidden_cells_and_directives_follow_nbdev():
    bd = _build_module()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('#| default_exp thing'),
        nbformat.v4.new_code_cell('#| hide\nsecret = 1'),
        nbformat.v4.new_code_cell('#| export\n# NBVAL_IGNORE_OUTPUT\ndef f(): pass\ns = "#| not a directive"'),
        nbformat.v4.new_code_cell('#| echo: false\nprint(2)', outputs=[nbformat.v4.new_output('stream', text='2\n')]),
        nbformat.v4.new_markdown_cell('Prose about `#| export`.'),
    ])
    assert bd.prepare(nb) == 'thing'
    assert [c.source for c in nb.cells] == ['def f(): pass\ns = "#| not a directive"', 'print(2)',
                                            'Prose about `#| export`.']
    assert bd.HIDE_INPUT_TAG in nb.cells[1].metadata.tags


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / 'keep.txt').write_text('mine')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'build_docs.py'), '--out', str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'refusing to replace' in r.stderr
    assert (tmp_path / 'keep.txt').read_text() == 'mine'
