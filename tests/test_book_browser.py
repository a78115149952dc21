"""The built book in headless Chromium: every page loads without errors, every image decodes,
every internal link (and its anchor) resolves, nothing is fetched from outside the book, and
no table or figure is wider than the page's content column at 1280 px (a reader would have
to scroll it sideways, and its caption would be cut); one full-page screenshot per page goes
to ``_build/screenshots/``.

Run after ``jupyter-book build . -W``, either as a test or from the shell::

    python -m pytest -m book tests/test_book_browser.py
    python tests/test_book_browser.py [--html _build/html] [--screenshots _build/screenshots]

Needs Debian's ``chromium`` (or ``$CHROMIUM``) and the ``playwright`` package, which drives
that browser; no browser is downloaded. The test skips, saying why, when either is missing
or the book has not been built.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set, else the first Chromium or Chrome on the PATH."""
    wanted = os.environ.get("CHROMIUM")
    if wanted:
        return shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def book_pages(html: Path) -> list[Path]:
    """Every HTML page of the build (theme assets and page sources excluded)."""
    skip = ("_static", "_sources", "_images", "_downloads")
    return sorted(p for p in html.rglob("*.html")
                  if not p.relative_to(html).parts[0].startswith(skip))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the output to the check's findings
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@functools.cache
def _anchors(path: Path) -> frozenset[str]:
    text = path.read_text(errors="replace")
    return frozenset(re.findall(r'\sid="([^"]+)"', text))


def _link_problem(href: str, base: str, html: Path) -> str | None:
    """Why an internal link is broken, or None when its file (and anchor) exist."""
    url, fragment = urldefrag(href)
    relative = unquote(urlparse(url).path).lstrip("/")
    target = html / relative
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link {href[len(base):]}: no file {target.relative_to(html)}"
    if fragment and target.suffix == ".html" and unquote(fragment) not in _anchors(target):
        return f"broken link {href[len(base):]}: no anchor #{fragment}"
    return None


_IMAGES_JS = """els => Promise.all(els.map(e => {
    e.loading = 'eager';
    return e.decode().then(() => [e.getAttribute('src'), e.naturalWidth])
                     .catch(() => [e.getAttribute('src'), 0]);
}))"""


#: Tables and figures wider than the content column (the article's content box), with
#: what names them: the caption, else the first header cell or the image's file.
_OVERFLOW_JS = """() => {
    const column = ['article.bd-article', 'main', 'body']
        .map(s => document.querySelector(s)).find(e => e);
    const style = getComputedStyle(column);
    const width = column.clientWidth - parseFloat(style.paddingLeft)
                  - parseFloat(style.paddingRight);
    const name = e => {
        const caption = e.querySelector('caption, figcaption');
        const text = caption ? caption.textContent
                   : (e.querySelector('th') || {}).textContent || e.getAttribute('src') || '';
        return text.trim().replace(/\\s+/g, ' ').slice(0, 80);
    };
    return [...column.querySelectorAll('table, img, figure, svg')]
        .map(e => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.width > width + 1)
        .map(([e, r]) => [e.tagName.toLowerCase(), Math.round(r.width), Math.round(width),
                          name(e)]);
}"""


def overflow_problems(page: object) -> list[str]:
    """Each table or figure of the loaded page that is wider than its content column."""
    return [f"{tag} wider than the content column ({wide} px > {column} px): {name}"
            for tag, wide, column, name in page.evaluate(_OVERFLOW_JS)]


def check_page(page: object, url: str, base: str, html: Path, screenshot: Path) -> list[str]:
    """Load one page; return what is wrong with it (an empty list when nothing is)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}")
            if r.url.startswith(base) else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)

    def route(route: object) -> None:  # the book must be whole on its own: no outside fetch
        if route.request.url.startswith((base, "data:", "blob:")):
            route.continue_()
        else:
            problems.append(f"fetches from outside the book: {route.request.url}")
            route.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    for src, width in page.eval_on_selector_all("img", _IMAGES_JS):
        if not width:
            problems.append(f"image does not decode: {src}")
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    for href in dict.fromkeys(hrefs):
        if href.startswith(base):
            problem = _link_problem(href, base, html)
            if problem:
                problems.append(problem)
    problems += overflow_problems(page)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    return problems


def check_book(html: Path = HTML, screenshots: Path = SCREENSHOTS,
               chromium: str | None = None) -> dict[str, list[str]]:
    """Every page of the build -> its problems; screenshots are written on the way."""
    from playwright.sync_api import sync_playwright

    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: apt-get install chromium, or set $CHROMIUM")
    results: dict[str, list[str]] = {}
    with serve(html) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for path in book_pages(html):
            name = path.relative_to(html).as_posix()
            page = context.new_page()
            shot = screenshots / name.replace("/", "__").replace(".html", ".png")
            results[name] = check_page(page, base + name, base, html, shot)
            page.close()
        browser.close()
    return results


def _report(results: dict[str, list[str]]) -> str:
    lines = []
    for name, problems in results.items():
        lines.append(f"{'ok' if not problems else 'FAIL':>4}  {name}")
        lines += [f"        {p}" for p in problems]
    return "\n".join(lines)


@pytest.mark.book
def test_every_page_of_the_built_book() -> None:
    if not (HTML / "index.html").is_file():
        pytest.skip("no built book in _build/html: run `jupyter-book build . -W` first")
    if find_chromium() is None:
        pytest.skip("no Chromium: apt-get install chromium (or set $CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    results = check_book()
    assert results, "the build holds no HTML page"
    failed = {name: problems for name, problems in results.items() if problems}
    assert not failed, _report(failed)


def test_link_check_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.html").write_text('<h1 id="top">A</h1><p id="x">x</p>')
    base = "http://127.0.0.1:1/"
    assert _link_problem(base + "book/a.html#x", base, tmp_path) is None
    assert _link_problem(base + "book/a.html", base, tmp_path) is None
    assert "no anchor #y" in _link_problem(base + "book/a.html#y", base, tmp_path)
    assert "no file book/b.html" in _link_problem(base + "book/b.html", base, tmp_path)
    assert book_pages(tmp_path) == [tmp_path / "book" / "a.html"]


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; }} article {{ width: 600px; padding: 0 20px; }}
</style></head><body><article class="bd-article"><h1>t</h1>
<div style="overflow-x: auto"><table><caption>{caption}</caption><tr>{cells}</tr></table></div>
</article></body></html>"""


def _browser_or_skip() -> str:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium: apt-get install chromium (or set $CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    return chromium


def test_overflow_check_reports_a_table_wider_than_the_column(tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    wide = "".join(f"<td>a_long_unbreakable_cell_{i}</td>" for i in range(12))
    narrow = "".join(f"<td>{i}</td>" for i in range(12))
    (tmp_path / "wide.html").write_text(_PAGE.format(caption="too wide", cells=wide))
    (tmp_path / "narrow.html").write_text(_PAGE.format(caption="fits", cells=narrow))
    with serve(tmp_path) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        found = {}
        for name in ("wide", "narrow"):
            page.goto(f"{base}{name}.html")
            found[name] = overflow_problems(page)
        browser.close()
    assert len(found["wide"]) == 1 and "> 600 px): too wide" in found["wide"][0]
    assert found["narrow"] == []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HTML, help="the built book (_build/html)")
    parser.add_argument("--screenshots", type=Path, default=SCREENSHOTS)
    parser.add_argument("--chromium", help="browser executable (default: $CHROMIUM or PATH)")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"error: no built book in {args.html}: run `jupyter-book build . -W` first")
        return 2
    results = check_book(args.html, args.screenshots, args.chromium)
    print(_report(results))
    failed = sum(bool(p) for p in results.values())
    print(f"{len(results) - failed} pages ok, {failed} with problems; screenshots in "
          f"{args.screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
