"""Open every page of the built site in headless Chromium, from file://, and screenshot it; then use the search
box and the name generator.

`python tools/check_docs.py [--site _docs]` loads each *.html page of the site, waits for MathJax, saves a
full-page screenshot to <site>/screens/<page>.png, and exits non-zero if a page logged a console error, threw,
failed to load a file, asked for anything outside file://, showed an image that did not load, or has math that
MathJax could not typeset. On every chapter page and the guide, at 1280 px, no `pre` block may be wider
than its box (code that scrolls sideways), and a line of 100 characters (ruff's limit) must fit the code
column: it prints how many characters the column shows. Chapters 02, 04 and 06 are also shot at a code cell,
as a reader sees them (<site>/screens/<page>-1280x900.png). Then: a search for "backward" typed into the search
box must list chapter 03a first; and try.html must give, for five contexts, the next-character probabilities that
mlp_names.sampling gives for the same exported model (within 1e-5), and 200 names drawn with prefix "ma", lengths
5-8 and "new" that all meet those controls. It drives Debian's Chromium (`apt-get install -y chromium`) through the
DevTools protocol.
"""
import argparse, base64, itertools, json, os, shutil, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

try:
    import websocket  # websocket-client, a pinned dev requirement
except ImportError:
    sys.exit('check_docs: error: websocket-client is missing: run `make setup-dev`')

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
INSTALL_HINT = 'install Debian\'s Chromium with `apt-get update && apt-get install -y chromium`, or pass --browser PATH'
WIDTH, HEIGHT = 1280, 900
PAGE_TIMEOUT = 60  # seconds for one page to load and typeset
LINE_LIMIT = 100  # characters a line of code may have (ruff's line-length): the code column must show them
SHOT_AT_CODE = ('02_layers', '04_train', '06_sampling')  # chapters shot at a code cell, 1280x900

# runs in the page after load: MathJax's typesetting finished, then what did not render
PAGE_PROBLEMS = '''(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const problems = [];
  for (const img of document.images)
    if (!(img.complete && img.naturalWidth > 0)) problems.push('image did not load: ' + img.getAttribute('src'));
  for (const e of document.querySelectorAll('[data-mjx-error]'))
    problems.push('math error: ' + e.getAttribute('data-mjx-error'));
  if (document.querySelector('script[src*="mathjax"]') && !window.MathJax?.startup?.document)
    problems.push('MathJax did not start');
  return [...new Set(problems)];
})()'''


# runs in a chapter page: the `pre` blocks wider than their box (each with its first line), and how many characters
# of code the column shows, measured by a line of LINE_LIMIT characters set in the first code cell's font
CODE_WIDTH = '''(() => {
  const pres = [...document.querySelectorAll('article pre, .bd-article pre, div.body pre')];
  const wide = [...new Set(pres)].filter(p => p.scrollWidth > p.clientWidth + 1).map(p => ({
    first: (p.textContent.split('\\n').find(l => l.trim()) || '').trim().slice(0, 100),
    longest: Math.max(...p.textContent.split('\\n').map(l => l.length)),
    scroll: p.scrollWidth, box: p.clientWidth}));
  const code = document.querySelector('div.cell_input pre') || document.querySelector('div.highlight pre');
  let shown = null;
  if (code) {
    const cs = getComputedStyle(code), probe = document.createElement('span');
    probe.textContent = 'x'.repeat(%d);
    probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre';
    probe.style.font = cs.font;
    code.appendChild(probe);
    const perChar = probe.getBoundingClientRect().width / %d;
    probe.remove();
    const inner = code.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    shown = Math.floor(inner / perChar + 1e-6);
  }
  return {wide, shown, blocks: pres.length};
})()''' % (LINE_LIMIT, LINE_LIMIT)

# scrolls the code cell worth showing (the first whose longest line is the page's longest, up to LINE_LIMIT) to the
# top of the window, below the sticky header
SCROLL_TO_CODE = '''(() => {
  const cells = [...document.querySelectorAll('div.cell_input pre')];
  const longest = c => Math.max(...c.textContent.split('\\n').map(l => l.length));
  const fits = cells.filter(c => longest(c) <= %d);
  const pool = fits.length ? fits : cells;
  const best = pool.reduce((a, c) => longest(c) > longest(a) ? c : a, pool[0]);
  if (!best) return null;
  window.scrollTo(0, best.getBoundingClientRect().top + window.scrollY - 120);
  return longest(best);
})()''' % LINE_LIMIT


class Browser:
    """One headless Chromium with one tab, spoken to over the DevTools protocol."""

    def __init__(self, exe: str):
        self.profile = tempfile.mkdtemp(prefix='check_docs-')
        # --no-sandbox: Chromium refuses to start its sandbox as root (containers, CI)
        args = [exe, '--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--remote-debugging-port=0', f'--user-data-dir={self.profile}', f'--window-size={WIDTH},{HEIGHT}',
                'about:blank']
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ids = itertools.count(1)
        self.events = []
        try:
            self.ws = websocket.create_connection(self._page_url(), timeout=PAGE_TIMEOUT, suppress_origin=True)
        except Exception:
            self.close()
            raise

    def _page_url(self) -> str:
        # Chromium writes the port it chose to DevToolsActivePort; /json/list then names the tab's socket
        port_file = Path(self.profile) / 'DevToolsActivePort'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'Chromium exited at start with code {self.proc.returncode}')
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=10) as r:
                    tabs = [t for t in json.load(r) if t.get('type') == 'page']
                if tabs:
                    return tabs[0]['webSocketDebuggerUrl']
            time.sleep(0.1)
        raise RuntimeError('Chromium did not open its DevTools port within 30 s')

    def call(self, method: str, **params):
        """Send one command and return its result; events that arrive meanwhile are kept in self.events."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({'id': msg_id, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == msg_id:
                if 'error' in msg:
                    raise RuntimeError(f'{method}: {msg["error"].get("message")}')
                return msg.get('result', {})
            if 'method' in msg:
                self.events.append(msg)

    def wait_for(self, event: str, timeout: float):
        deadline = time.monotonic() + timeout
        while not any(e['method'] == event for e in self.events):
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                raise RuntimeError(f'no {event} within {timeout:.0f} s')
            finally:
                self.ws.settimeout(PAGE_TIMEOUT)
            if 'method' in msg:
                self.events.append(msg)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def console_errors(events: list) -> list:
    """What a page reported: console.error, uncaught exceptions, the browser's log (failed loads), and any request
    for something that is not a file of the site (the pages must work offline)."""
    found = []
    for e in events:
        p = e.get('params', {})
        if e['method'] == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
            found.append('console error: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
        elif e['method'] == 'Runtime.exceptionThrown':
            d = p.get('exceptionDetails', {})
            found.append('uncaught: ' + (d.get('exception', {}).get('description') or d.get('text', '')).splitlines()[0])
        elif e['method'] == 'Log.entryAdded' and p.get('entry', {}).get('level') == 'error':
            entry = p['entry']
            found.append(f'console error: {entry.get("text", "")} {entry.get("url", "")}'.strip())
        elif e['method'] == 'Network.requestWillBeSent':
            url = p.get('request', {}).get('url', '')
            if not url.split(':', 1)[0] in ('file', 'data', 'blob', 'about'):
                found.append(f'network request: {url}')
    return list(dict.fromkeys(found))  # Chromium may report one error through two channels


def load(browser: Browser, page: Path, query: str = ''):
    browser.events.clear()
    browser.call('Page.navigate', url=page.resolve().as_uri() + query)
    browser.wait_for('Page.loadEventFired', PAGE_TIMEOUT)


def evaluate(browser: Browser, expression: str):
    result = browser.call('Runtime.evaluate', expression=expression, awaitPromise=True, returnByValue=True)
    if 'exceptionDetails' in result:
        d = result['exceptionDetails']
        raise RuntimeError((d.get('exception', {}).get('description') or d.get('text', '')).splitlines()[0])
    return result['result'].get('value')


def wait_until(browser: Browser, expression: str, what: str, timeout: float = PAGE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not evaluate(browser, expression):
        if time.monotonic() > deadline:
            raise RuntimeError(f'{what} within {timeout:.0f} s')
        time.sleep(0.2)


def is_chapter(page: Path) -> bool:
    "A chapter's page (00_vocab.html ...), or the guide: the pages whose code must fit."
    return page.stem[:2].isdigit() or page.stem == 'guide'


def check_page(browser: Browser, page: Path, shot: Path) -> list:
    load(browser, page)
    try:
        problems = list(evaluate(browser, PAGE_PROBLEMS) or [])
    except RuntimeError as e:
        problems = [f'page check failed: {e}']
    if is_chapter(page):
        problems += check_code_width(browser, page)
        if page.stem in SHOT_AT_CODE:
            problems += shoot_code_cell(browser, page, shot.with_name(f'{page.stem}-{WIDTH}x{HEIGHT}.png'))
    # full page: let the viewport grow to the page's height for the shot, then restore it
    size = browser.call('Page.getLayoutMetrics')['cssContentSize']
    height = max(HEIGHT, int(size['height']))
    browser.call('Emulation.setDeviceMetricsOverride', width=WIDTH, height=height, deviceScaleFactor=1, mobile=False)
    try:
        png = browser.call('Page.captureScreenshot', format='png', captureBeyondViewport=True)['data']
    finally:
        browser.call('Emulation.clearDeviceMetricsOverride')
    save_png(shot, png)
    return console_errors(browser.events) + problems


def save_png(shot: Path, png: str):
    shot.parent.mkdir(parents=True, exist_ok=True)
    tmp = shot.with_suffix('.png.tmp')
    tmp.write_bytes(base64.b64decode(png))
    os.replace(tmp, shot)


def check_code_width(browser: Browser, page: Path) -> list:
    """At WIDTH px: no `pre` block wider than its box, and a line of LINE_LIMIT characters fits the code column."""
    browser.call('Emulation.setDeviceMetricsOverride', width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    try:
        found = evaluate(browser, CODE_WIDTH)
    finally:
        browser.call('Emulation.clearDeviceMetricsOverride')
    problems = []
    shown = found['shown']
    if shown is not None and shown < LINE_LIMIT:
        problems.append(f'{page.name}: the code column shows {shown} characters at {WIDTH} px, '
                        f'fewer than a line of {LINE_LIMIT}')
    for w in found['wide']:
        problems.append(f'{page.name}: a block scrolls sideways at {WIDTH} px ({w["scroll"]} px in a {w["box"]} px '
                        f'box, longest line {w["longest"]} characters): {w["first"]!r}')
    print(f'     {page.name}: {found["blocks"]} blocks, {len(found["wide"])} wider than their box; '
          f'the code column shows {shown} characters at {WIDTH} px')
    return problems


def shoot_code_cell(browser: Browser, page: Path, shot: Path) -> list:
    """A screenshot of the window, WIDTH x HEIGHT, scrolled to the page's widest code cell that keeps LINE_LIMIT."""
    browser.call('Emulation.setDeviceMetricsOverride', width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    try:
        longest = evaluate(browser, SCROLL_TO_CODE)
        time.sleep(0.3)  # the sticky header settles after the scroll
        png = browser.call('Page.captureScreenshot', format='png')['data']
        evaluate(browser, 'window.scrollTo(0, 0)')
    finally:
        browser.call('Emulation.clearDeviceMetricsOverride')
    if longest is None:
        return [f'{page.name}: no code cell to show']
    save_png(shot, png)
    print(f'     {page.name}: shot at a code cell whose longest line has {longest} characters  -> {shot}')
    return []


def check_search(browser: Browser, site: Path) -> list:
    """Type "backward" into the search box of the home page and press Enter: chapter 03a must come first."""
    load(browser, site / 'index.html')
    # the theme's search field is a button that opens a dialog with the search box: click it as a reader would
    evaluate(browser, "document.querySelector('.search-button__button, .search-button-field')?.click()")
    wait_until(browser, "document.activeElement && document.activeElement.name === 'q' || "
               "(document.querySelector('input[name=\"q\"]')?.focus(), document.activeElement?.name === 'q')",
               'the search box did not take the focus')
    browser.call('Input.insertText', text='backward')
    for kind in ('keyDown', 'keyUp'):
        browser.call('Input.dispatchKeyEvent', type=kind, key='Enter', code='Enter', windowsVirtualKeyCode=13,
                     **({'text': '\r'} if kind == 'keyDown' else {}))
    browser.wait_for('Page.loadEventFired', PAGE_TIMEOUT)
    wait_until(browser, "document.querySelectorAll('#search-results li').length > 0 && "
               "/found/i.test(document.querySelector('#search-results').textContent)", 'no search results')
    hits = evaluate(browser, "[...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")
    problems = console_errors(browser.events)
    first = hits[0].split('#')[0].split('?')[0] if hits else None
    if first != '03a_backward.html':
        problems.append(f'search "backward": first result {first}, not 03a_backward.html (results: {hits[:5]})')
    print(f'{"FAIL" if problems else "ok  "} search "backward": {len(hits)} results, first {hits[0] if hits else None}')
    return problems


def check_try(browser: Browser, site: Path, shot: Path) -> list:
    """try.html against mlp_names.sampling on the same exported model, then its controls on 200 names."""
    import torch
    from mlp_names.dataset import split_words
    from mlp_names.files import load_words
    from mlp_names.sampling import inference_net, next_char_probs, read_export
    exported = read_export(site / 'model.json')
    net, vocab, bs = inference_net(exported['model']), exported['vocab'], exported['block_size']
    g = torch.Generator().manual_seed(0)
    contexts = [[0] * bs, ([0] * bs + vocab.encode('ma'))[-bs:], ([0] * bs + vocab.encode('emma'))[-bs:]] + \
               torch.randint(1, len(vocab), (2, bs), generator=g).tolist()
    controls = [(1.0, None, True), (0.7, None, True), (1.3, 5, True), (1.0, None, False), (0.5, 3, False)]
    load(browser, site / 'try.html')
    problems = []
    for ctx, (T, k, can_end) in zip(contexts, controls):
        with torch.no_grad():
            want = next_char_probs(net(torch.tensor([ctx])), T, k, can_end)[0]
        got = torch.tensor(evaluate(browser, f'mlpNames.nextCharProbs(mlpNames.forward(mlpNames.loadModel('
                                    f'MLP_NAMES_EXPORT), {ctx}), {T}, {json.dumps(k)}, {json.dumps(can_end)})'),
                           dtype=torch.float64)
        diff = (got - want).abs().max().item()
        print(f'     context {vocab.decode(ctx)!r}, T={T}, top-k={k}, can end={can_end}: largest difference {diff:.1e}')
        if not diff <= 1e-5:
            problems.append(f'try.html: context {ctx}: probabilities differ from Python by {diff:.2e}')
    # the controls, set in the form as a reader would, then the button
    form = {'prefix': 'ma', 'minlen': 5, 'maxlen': 8, 'count': 200, 'temperature': 1, 'topk': '', 'seed': 1}
    evaluate(browser, ';'.join(f'document.getElementById({k!r}).value = {json.dumps(str(v))}' for k, v in form.items())
             + ";document.getElementById('novel').checked = true; document.getElementById('unique').checked = false")
    evaluate(browser, "document.getElementById('draw').click()")
    wait_until(browser, "document.getElementById('status').dataset.done", 'no names')
    names = evaluate(browser, "[...document.querySelectorAll('#names li')].map(li => li.textContent)")
    words = load_words()
    trained = set(split_words(words, exported['config'].split_seed)[0])
    bad = [nm for nm in names if not (nm.startswith('ma') and 5 <= len(nm) <= 8 and nm not in trained)]
    if len(names) != 200 or bad:
        status = evaluate(browser, "document.getElementById('status').textContent")
        problems.append(f'try.html: {len(names)} names, {len(bad)} break the controls {bad[:5]} ({status})')
    print(f'     200 names asked for with prefix "ma", lengths 5-8, new: {len(names)} came, {len(bad)} break the controls,'
          f' e.g. {", ".join(names[:6])}')
    png = browser.call('Page.captureScreenshot', format='png')['data']
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(base64.b64decode(png))
    problems += console_errors(browser.events)
    print(f'{"FAIL" if problems else "ok  "} try.html: Python and JavaScript agree, controls met  -> {shot}')
    return problems


def find_browser(given: str | None) -> str:
    if given:
        if not (Path(given).is_file() or shutil.which(given)):
            sys.exit(f'check_docs: error: no browser at {given}')
        return given
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    sys.exit(f'check_docs: error: Chromium not found: {INSTALL_HINT}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--site', type=Path, default=ROOT / '_docs', help='the built site (default: _docs)')
    ap.add_argument('--screens', type=Path, default=None, help='where screenshots go (default: SITE/screens)')
    ap.add_argument('--browser', default=None, help='Chromium executable (default: found on PATH)')
    args = ap.parse_args()
    pages = sorted(args.site.glob('*.html'))
    if not pages:
        sys.exit(f'check_docs: error: no pages in {args.site}: run `make docs` first')
    screens = args.screens or args.site / 'screens'
    exe = find_browser(args.browser)
    try:
        browser = Browser(exe)
    except (OSError, RuntimeError, websocket.WebSocketException) as e:
        sys.exit(f'check_docs: error: could not drive {exe}: {e}')
    failed = 0
    try:
        for domain in ('Page', 'Runtime', 'Log', 'Network'):
            browser.call(f'{domain}.enable')
        for page in pages:
            shot = screens / f'{page.stem}.png'
            try:
                problems = check_page(browser, page, shot)
            except RuntimeError as e:
                problems = [str(e)]
            failed += bool(problems)
            print(f'{"FAIL" if problems else "ok  "} {page.name}' + ('' if problems else f'  -> {shot}'))
            for p in problems:
                print(f'     {p}')
        for name, check in (('search', lambda: check_search(browser, args.site)),
                            ('try.html', lambda: check_try(browser, args.site, screens / 'try-names.png'))):
            try:
                problems = check()
            except (RuntimeError, ValueError, OSError) as e:
                problems = [f'{name}: {e}']
                print(f'FAIL {name}')
            failed += bool(problems)
            for p in problems:
                print(f'     {p}')
    finally:
        browser.close()
    print(f'check_docs: {len(pages) + 2 - failed} of {len(pages) + 2} checks ok; screenshots in {screens}')
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    main()
