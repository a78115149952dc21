"""Small additions to the Jupyter Book 1.x build, loaded through ``_config.yml``.

Every page is read (and so executed) on every build: the pages render ``results/`` and
``$ADTR_BOOK_PROFILE``, which Sphinx does not track, so an incremental build would
otherwise keep showing numbers that are no longer in ``results/``.

Under Sphinx 7, the inline scripts of sphinx-thebe and sphinx-togglebutton reach every page
twice (once with ``filename=None``, once with ``filename=''``), so the page declares
``const THEBE_JS_URL`` twice and the browser reports a script error. Scripts that differ
only in that way are dropped here, keeping the first.
"""

from __future__ import annotations

from typing import Any


def _drop_duplicate_scripts(app: Any, pagename: str, templatename: str,
                            context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def _read_every_page(app: Any, env: Any, added: set[str], changed: set[str],
                     removed: set[str]) -> list[str]:
    return sorted(env.found_docs - added - changed - removed)


def setup(app: Any) -> dict[str, Any]:
    app.connect("env-get-outdated", _read_every_page)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
