"""CITATION.cff and the book's citation page name this version of the package and the paper."""

from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_citation_file_names_the_package_version_and_the_paper() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == version
    assert cff["authors"] == [{"name": "the adtr contributors"}]
    paper = cff["preferred-citation"]
    assert paper["year"] == 2022 and "arXiv:2209.01816" in str(paper["identifiers"])
    assert [a["family-names"] for a in paper["authors"]] == ["You", "Yang", "Luo", "Cui",
                                                             "Zheng", "Le"]
    page = (ROOT / "book" / "cite.md").read_text()
    assert f"version = {{{version}}}" in page and "2209.01816" in page
    assert "book/cite" in (ROOT / "_toc.yml").read_text()
