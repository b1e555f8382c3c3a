"""Build the book as a static website in _docs/ from the stored notebooks (nothing is re-executed).

`python tools/build_docs.py [--out DIR]` writes index.html (from nbs/index.ipynb), one page per chapter
(every other nbs/*.ipynb, in sorted order) with previous/next links, a chapter list and a table of contents,
the API reference of each chapter's exported module, and the files the pages need. Math is typeset in the
browser by the MathJax copy that the django-static-mathjax package ships, so the pages work offline from
file://. Notebooks link to each other as `NN_name.ipynb`; these links become links between the pages.
"""
import argparse, configparser, html, importlib, importlib.util, inspect, os, re, shutil, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from pygments.formatters import HtmlFormatter
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
STYLE = Path(__file__).resolve().parent / 'docs_style.css'
MARKER = '.built-by-build_docs'  # lets a rebuild replace a folder only if this script made it
MATHJAX_FILES = ('es5/tex-svg-full.js', 'LICENSE')  # SVG output needs no web fonts; "full" loads nothing later
MATHJAX_HINT = 'install django-static-mathjax==3.2.2.1 (`make setup-dev` does)'

DIRECTIVE = re.compile(r'^\s*#\|\s?(.*)$')
NBVAL_MARK = re.compile(r'^\s*#\s*NBVAL_[A-Z_]+\s*$')  # nbval's test markers mean nothing to a reader
HIDE_CELL = {'hide', 'include: false'}
HIDE_INPUT = {'echo: false', 'hide_input'}
HIDE_OUTPUT = {'output: false', 'hide_output'}
HIDE_INPUT_TAG = 'build-docs-hide-input'  # given to cells whose code nbdev would not show


class BuildError(Exception):
    pass


def settings() -> dict:
    cfg = configparser.ConfigParser(delimiters=['='], interpolation=None)
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])


# ---------------------------------------------------------------- notebooks


def clean_cell(cell) -> list:
    """Remove the cell's leading nbdev directives (and nbval markers); return the directives.

    As in nbdev, directives are the `#|` lines before the first line of code; later lines are code."""
    lines = cell.source.splitlines()
    directives, start = [], 0
    while start < len(lines):
        m = DIRECTIVE.match(lines[start])
        if m:
            directives.append(' '.join(m.group(1).split()))
        elif lines[start].strip() and not NBVAL_MARK.match(lines[start]):
            break
        start += 1
    cell.source = '\n'.join(lines[start:]).strip('\n')
    return directives


def prepare(nb) -> str | None:
    """Drop what nbdev would hide, in place; return the module named by `#| default_exp`, if any."""
    module, cells = None, []
    for cell in nb.cells:
        directives = clean_cell(cell)
        flags = {d.lower() for d in directives}
        for d in directives:
            if d.startswith('default_exp '):
                module = d.split(None, 1)[1]
        if flags & HIDE_CELL:
            continue
        if cell.cell_type == 'code':
            if flags & HIDE_OUTPUT:
                cell.outputs = []
            if flags & HIDE_INPUT:
                cell.metadata.setdefault('tags', []).append(HIDE_INPUT_TAG)
            if (not cell.source or flags & HIDE_INPUT) and not cell.outputs:
                continue  # e.g. a cell that only held `#| default_exp`
        elif not cell.source.strip():
            continue
        cells.append(cell)
    nb.cells = cells
    return module


def make_exporter() -> HTMLExporter:
    c = Config()
    c.ExtractOutputPreprocessor.enabled = True  # plots become files next to the page, not data URIs
    c.CoalesceStreamsPreprocessor.enabled = True  # one block per cell's printed text, not one per print
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    return HTMLExporter(config=c, template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)


def convert(exporter, nb, stem: str, out: Path) -> tuple:
    """Notebook body as HTML, and the files of its outputs, written under out/figures/<stem>/."""
    body, res = exporter.from_notebook_node(nb, resources={'output_files_dir': f'figures/{stem}', 'unique_key': stem})
    for name, data in res.get('outputs', {}).items():
        write_bytes(out / name, data)
    return body, set(res.get('outputs', {}))


# ---------------------------------------------------------------- API reference


class _Written:
    """An annotation shown as written: with `from __future__ import annotations` they are strings, which
    inspect would print with quotes."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text


def _unquoted(sig: inspect.Signature) -> inspect.Signature:
    def fix(a):
        return _Written(a) if isinstance(a, str) else a
    params = [p.replace(annotation=fix(p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=fix(sig.return_annotation))


def format_signature(prefix: str, name: str, obj) -> str:
    try:
        sig = _unquoted(inspect.signature(obj))
    except (TypeError, ValueError):
        return f'{prefix}{name}'
    one_line = f'{prefix}{name}{sig}'
    if len(one_line) <= 90 or not sig.parameters:
        return one_line
    # long signatures: one parameter a line, as a formatter would write them
    params = ',\n'.join(f'    {p}' for p in sig.parameters.values())
    ret = '' if sig.return_annotation is inspect.Signature.empty else f' -> {inspect.formatannotation(sig.return_annotation)}'
    return f'{prefix}{name}(\n{params},\n){ret}'


def doc_html(obj) -> str:
    doc = inspect.getdoc(obj)
    return f'<div class="docstring">{markdown2html_mistune(doc)}</div>' if doc else ''


def _member(obj, name: str, member):
    """(signature, documented function) of a public class member, or None for anything else."""
    if isinstance(member, property):
        return f'property {name}', member
    if isinstance(member, staticmethod):
        return format_signature('staticmethod ', name, member.__func__), member.__func__
    if isinstance(member, classmethod):
        return format_signature('classmethod ', name, member.__get__(None, obj)), member.__func__  # no `cls`
    if inspect.isfunction(member):
        return format_signature('', name, member), member
    return None


def _defined_in(func) -> str | None:
    return getattr(getattr(func, 'fget', func), '__module__', None)


def method_entry(anchor: str | None, sig: str, func) -> str:
    id_attr = f' id="{anchor}"' if anchor else ''
    return f'<div class="api-method"{id_attr}><pre class="signature">{html.escape(sig)}</pre>{doc_html(func)}</div>'


def api_entry(name: str, obj, module: str) -> str:
    anchor = f'api-{name}'
    if inspect.isclass(obj):
        parts, kind = [f'<pre class="signature">{html.escape(format_signature("class ", name, obj))}</pre>', doc_html(obj)], 'class'
        for mname, member in vars(obj).items():  # the class's own members, in definition order
            found = None if mname.startswith('_') else _member(obj, mname, member)
            # methods that another module adds (fastcore's @patch) are documented with that module
            if found and _defined_in(found[1]) in (module, None):
                parts.append(method_entry(f'{anchor}.{mname}', *found))
    elif callable(obj):
        parts, kind = [f'<pre class="signature">{html.escape(format_signature("", name, obj))}</pre>', doc_html(obj)], 'function'
    else:
        value = repr(obj)
        value = value if len(value) <= 200 else value[:199] + '…'
        parts, kind = [f'<pre class="signature">{html.escape(f"{name} = {value}")}</pre>'], 'data'
    return (f'<div class="api-item api-{kind}"><h3 id="{anchor}"><code>{html.escape(name)}</code></h3>'
            + ''.join(parts) + '</div>')


def patched_entries(lib: str, module: str) -> str:
    """Methods that `module` adds to classes of the library's other modules (fastcore's @patch)."""
    entries, seen = [], set()
    for mod in [m for n, m in sorted(sys.modules.items()) if n.startswith(f'{lib}.') and n != module and m]:
        for cls in vars(mod).values():
            if not inspect.isclass(cls) or cls.__module__ != mod.__name__ or id(cls) in seen:
                continue
            seen.add(id(cls))
            for mname, member in vars(cls).items():
                found = None if mname.startswith('_') else _member(cls, mname, member)
                if found and _defined_in(found[1]) == module:
                    qual = f'{cls.__name__}.{mname}'
                    entries.append(f'<div class="api-item api-patched"><h3 id="api-{qual}"><code>{html.escape(qual)}</code></h3>'
                                   f'{method_entry(None, *found)}</div>')
    return ''.join(entries)


def api_section(lib: str, module: str, source: str) -> str:
    full = f'{lib}.{module}'
    try:
        mod = importlib.import_module(full)
    except Exception as e:  # any import failure means the export is stale or broken
        raise BuildError(f'cannot import {full} for the API reference of {source}: {e!r} (run nbdev_export?)')
    names = getattr(mod, '__all__', None)
    if names is None:
        names = [n for n, o in vars(mod).items() if not n.startswith('_') and getattr(o, '__module__', None) == full]
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise BuildError(f'{full}.__all__ names {", ".join(missing)}, which the module does not define')
    entries = ''.join(api_entry(n, getattr(mod, n), full) for n in names) + patched_entries(lib, full)
    return (f'<section class="api"><h2 id="api-reference">API reference</h2>'
            f'<p class="api-intro">The public names of <code>{full}</code>, the module this chapter exports: '
            f'signatures and docstrings, read from the module itself.</p>{entries}</section>')


# ---------------------------------------------------------------- links between pages and files


class Site:
    """What is being built: the pages, where each source file ends up, and the warnings so far."""

    def __init__(self, out: Path, nbs: Path, cfg: dict):
        self.out, self.cfg = out, cfg
        notebooks = sorted(nbs.glob('*.ipynb'))
        home = nbs / 'index.ipynb'
        if home not in notebooks:
            raise BuildError(f'{home.relative_to(ROOT)} is missing: it is the home page of the site')
        self.chapters = [p for p in notebooks if p != home]
        self.order = [home] + self.chapters
        self.page_of = {p.resolve(): ('index.html' if p == home else f'{p.stem}.html') for p in self.order}
        readme = ROOT / 'README.md'  # README.md is generated from the home notebook: link to the home page
        if readme.exists():
            self.page_of[readme.resolve()] = 'index.html'
        self.extra_pages = {}  # markdown files of the repository that pages link to: path -> page name
        self.generated = set()  # site files made from cell outputs: their links are already right
        self.warnings = []

    def warn(self, msg: str):
        self.warnings.append(msg)
        print(f'warning: {msg}', file=sys.stderr)

    def resolve(self, url: str, source: Path) -> str:
        """Where a link found in `source` (a repository file) points to on the site."""
        if not url or url.startswith('#') or url.startswith('//') or re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:', url):
            return url  # in-page, external or data: links stay as they are
        if url in self.generated:
            return url
        parts = urlsplit(url)
        frag = f'#{parts.fragment}' if parts.fragment else ''
        if url.startswith('/'):
            self.warn(f'{rel(source)}: absolute link {url} will not work on the site')
            return url
        target = (source.parent / unquote(parts.path)).resolve()
        if target in self.page_of:
            return self.page_of[target] + frag
        try:
            inside = target.relative_to(ROOT).as_posix()
        except ValueError:
            self.warn(f'{rel(source)}: link {url} points outside the repository')
            return url
        if target.is_file() and target.suffix.lower() == '.md':
            if target not in self.extra_pages:
                self.extra_pages[target] = re.sub(r'[^A-Za-z0-9_.-]+', '-', inside[:-3]) + '.html'
            return self.extra_pages[target] + frag
        if target.is_file():  # any other file (image, script, data): a copy in files/
            dest = self.out / 'files' / inside
            if not dest.exists():
                write_bytes(dest, target.read_bytes())
            return quote(f'files/{inside}') + frag
        if target.is_dir() and self.cfg.get('git_url'):
            return f'{self.cfg["git_url"]}/tree/{self.cfg.get("branch", "main")}/{quote(inside)}'
        self.warn(f'{rel(source)}: link {url} does not resolve to a file')
        return url

    def rewrite_links(self, body: str, source: Path) -> str:
        return re.sub(r'\b(href|src)="([^"]*)"',
                      lambda m: f'{m.group(1)}="{html.escape(self.resolve(html.unescape(m.group(2)), source))}"', body)


# ---------------------------------------------------------------- page layout


class Headings(HTMLParser):
    """Collect (level, id, text) of h1-h3, leaving out the pilcrow of nbconvert's anchor links."""

    def __init__(self):
        super().__init__()
        self.found, self.current, self.skip = [], None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ('h1', 'h2', 'h3') and a.get('id'):
            self.current = [int(tag[1]), a['id'], '']
        elif tag == 'a' and 'anchor-link' in (a.get('class') or '').split():
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == 'a' and self.skip:
            self.skip -= 1
        elif self.current and tag == f'h{self.current[0]}':
            self.found.append((self.current[0], self.current[1], ' '.join(self.current[2].split())))
            self.current = None

    def handle_data(self, data):
        if self.current and not self.skip:
            self.current[2] += data


def headings(body: str) -> list:
    p = Headings()
    p.feed(body)
    return p.found


def chapter_label(path: Path, title: str) -> str:
    num = re.match(r'^(\d+[a-z]?)_', path.stem)
    prefix = f'<span class="num">{html.escape(num.group(1))}</span> ' if num else ''
    return prefix + html.escape(title)


def toc_list(toc: list) -> str:
    items = ''.join(f'<li class="toc-h{lvl}{" toc-api" if i.startswith("api-") and lvl == 3 else ""}">'
                    f'<a href="#{html.escape(i)}">{html.escape(t)}</a></li>' for lvl, i, t in toc)
    return f'<ul class="page-toc">{items}</ul>' if items else ''


def page_html(cfg, title, body, nav, pager) -> str:
    book = html.escape(cfg.get('title', 'Book'))
    head_title = book if title == cfg.get('title') else f'{html.escape(title)} · {book}'
    return f'''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{head_title}</title>
<link rel="stylesheet" href="assets/pygments.css">
<link rel="stylesheet" href="assets/style.css">
<script>
// MathJax reads this before it starts: $...$ is inline math in the notebooks' markdown. An unknown macro
// is an error (not red text), and every TeX error goes to the console, where `make docs-check` sees it.
window.MathJax = {{
  tex: {{
    inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
    processEscapes: true,
    packages: {{'[-]': ['noundefined']}},
    formatError: (jax, err) => {{ console.error('TeX error: ' + err.message); return jax.formatError(err); }}
  }},
  svg: {{fontCache: 'global'}}
}};
</script>
<script defer src="assets/mathjax/tex-svg-full.js"></script>
</head>
<body>
<header class="site-header"><a class="book-title" href="index.html">{book}</a>
<span class="tagline">{html.escape(cfg.get('description', ''))}</span></header>
<div class="layout">
{nav}
<main class="page">
<article class="content">
{body}
</article>
{pager}
</main>
</div>
<footer class="site-footer">Built from the notebooks' stored outputs by <code>tools/build_docs.py</code>.</footer>
</body>
</html>
'''


def site_nav(site: Site, titles: dict, current: str, toc: list) -> str:
    """The chapter list, with the table of contents of the current page under its entry."""
    items = []
    for path in site.order:
        page = site.page_of[path.resolve()]
        label = 'Home' if page == 'index.html' else chapter_label(path, titles[path])
        if page == current:
            items.append(f'<li class="current"><a href="{page}" aria-current="page">{label}</a>{toc_list(toc)}</li>')
        else:
            items.append(f'<li><a href="{page}">{label}</a></li>')
    extra = ''
    if current not in site.page_of.values() and toc:  # a page outside the chapter list
        extra = f'<h2>On this page</h2>{toc_list(toc)}'
    return f'<nav class="site-nav" aria-label="Chapters"><h2>Chapters</h2><ol>{"".join(items)}</ol>{extra}</nav>'


def pager(site: Site, titles: dict, i: int) -> str:
    links = []
    for j, cls, arrow in ((i - 1, 'prev', '← Previous'), (i + 1, 'next', 'Next →')):
        if 0 <= j < len(site.order):
            p = site.order[j]
            label = 'Home' if j == 0 else chapter_label(p, titles[p])
            links.append(f'<a class="{cls}" href="{site.page_of[p.resolve()]}" rel="{cls}">'
                         f'<span class="dir">{arrow}</span><span class="label">{label}</span></a>')
    return f'<nav class="pager" aria-label="Previous and next chapter">{"".join(links)}</nav>'


# ---------------------------------------------------------------- files


def rel(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def write_bytes(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_text(path: Path, text: str):
    write_bytes(path, text.encode('utf-8'))


def copy_assets(out: Path):
    if not STYLE.exists():
        raise BuildError(f'{rel(STYLE)} is missing')
    write_text(out / 'assets' / 'style.css', STYLE.read_text(encoding='utf-8'))
    write_text(out / 'assets' / 'pygments.css', HtmlFormatter(style='default').get_style_defs('.highlight'))
    spec = importlib.util.find_spec('mathjax')
    base = Path(spec.submodule_search_locations[0]) / 'static' / 'mathjax' if spec and spec.submodule_search_locations else None
    for name in MATHJAX_FILES:
        src = base / name if base else None
        if not src or not src.is_file():
            raise BuildError(f'MathJax not found ({name}): {MATHJAX_HINT}')
        write_bytes(out / 'assets' / 'mathjax' / Path(name).name, src.read_bytes())


def check_replaceable(out: Path):
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise BuildError(f'refusing to replace {out}: it was not made by build_docs.py (delete it, or use --out)')


def replace_dir(tmp: Path, out: Path):
    """Put the finished site in place of the old one, so that a failed build leaves the old site intact."""
    old = None
    if out.exists():
        check_replaceable(out)
        old = out.with_name(f'{out.name}.old-{os.getpid()}')
        out.rename(old)
    tmp.rename(out)
    if old:
        shutil.rmtree(old)


# ---------------------------------------------------------------- build


def build(out: Path) -> Site:
    cfg = settings()
    nbs = ROOT / cfg.get('nbs_path', 'nbs')
    lib = cfg.get('lib_name', 'mlp_names')
    check_replaceable(out)
    sys.path.insert(0, str(ROOT))  # document the working tree's package, installed or not
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.tmp-', dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes a private folder; the site is an ordinary one
    try:
        site = Site(tmp, nbs, cfg)
        exporter = make_exporter()
        bodies, titles = {}, {}
        for path in site.order:
            nb = nbformat.read(path, as_version=4)
            module = prepare(nb)
            body, outputs = convert(exporter, nb, path.stem, tmp)
            site.generated |= outputs
            body = site.rewrite_links(body, path)
            if module:
                body += api_section(lib, module, rel(path))
            found = headings(body)
            titles[path] = next((t for lvl, _, t in found if lvl == 1), path.stem)
            bodies[path] = (body, found)
        for i, path in enumerate(site.order):
            body, found = bodies[path]
            page = site.page_of[path.resolve()]
            toc = [h for h in found if not (h[0] == 1 and h[2] == titles[path])]
            write_text(tmp / page, page_html(cfg, titles[path], body, site_nav(site, titles, page, toc),
                                             pager(site, titles, i)))
        done = set()
        while set(site.extra_pages) - done:  # linked markdown files, which may link to further ones
            for path in sorted(set(site.extra_pages) - done):
                done.add(path)
                body = site.rewrite_links(markdown2html_mistune(path.read_text(encoding='utf-8')), path)
                found = headings(body)
                title = next((t for lvl, _, t in found if lvl == 1), rel(path))
                toc = [h for h in found if not (h[0] == 1 and h[2] == title)]
                page = site.extra_pages[path]
                write_text(tmp / page, page_html(cfg, title, body, site_nav(site, titles, page, toc), ''))
        copy_assets(tmp)
        (tmp / MARKER).touch()
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    site.out = out
    return site


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=Path, default=None, help='output folder (default: doc_path of settings.ini, _docs)')
    args = ap.parse_args()
    out = (args.out or ROOT / settings().get('doc_path', '_docs')).resolve()
    try:
        site = build(out)
    except BuildError as e:
        sys.exit(f'build_docs: error: {e}')
    pages = len(site.order) + len(site.extra_pages)
    note = f', {len(site.warnings)} warning(s)' if site.warnings else ''
    print(f'build_docs: {pages} pages in {rel(out)}{note}; open {rel(out)}/index.html')


if __name__ == '__main__':
    main()
