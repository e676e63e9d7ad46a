#!/usr/bin/env python3
"""Checks each crate's `cargo doc` front page as a user first sees it: the crate documentation
opens with a paragraph saying why (before any heading), and a Rust example follows before the
first heading. Reads the rendered HTML with the standard library's HTML parser.

    python3 scripts/doc_front_page.py target/doc sentry_meta sentry_meta_core

With `--screenshot DIR` it also saves each front page as a PNG in DIR, taken by headless Chromium
(when `chromium` is installed), for a human to look at.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path


# Elements without an end tag: they open nothing.
VOID = {"br", "img", "hr", "input", "wbr"}


class TopDoc(HTMLParser):
    """The top-level elements of the crate's `docblock`, in order, up to its first heading."""

    def __init__(self):
        super().__init__()
        self.depth = None  # depth inside the docblock, None outside it
        self.done = False
        self.elements = []  # (tag, classes, text)
        self.current = None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.done:
            return
        if self.depth is None:
            if tag == "div" and "docblock" in classes:
                self.depth = 0
            return
        if tag in VOID:
            return
        if self.depth == 0:
            if tag.startswith("h") and tag[1:].isdigit():
                self.done = True
                return
            self.current = [tag, classes, ""]
            self.elements.append(self.current)
        elif self.current is not None and tag == "pre":
            self.current[1] = self.current[1] + classes + ["pre"]
        self.depth += 1

    def handle_endtag(self, tag):
        if self.done or self.depth is None or tag in VOID:
            return
        self.depth -= 1
        if self.depth < 0:
            self.done = True

    def handle_data(self, data):
        if self.current is not None and not self.done and self.depth:
            self.current[2] += data


def check(doc_dir: Path, crate: str) -> list:
    page = doc_dir / crate / "index.html"
    if not page.is_file():
        return [f"{page}: missing (run cargo doc first)"]
    parser = TopDoc()
    parser.feed(page.read_text(encoding="utf-8"))
    elements = parser.elements
    problems = []
    if not elements or elements[0][0] != "p" or len(elements[0][2].split()) < 4:
        problems.append(f"{crate}: the front page does not open with a sentence saying why")
    if not any("pre" in classes and "rust" in classes for _, classes, _ in elements):
        problems.append(f"{crate}: no Rust example before the first heading of the front page")
    return problems


def screenshot(doc_dir: Path, crate: str, out: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("doc_front_page.py: chromium not found, no screenshot", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,1600",
             f"--screenshot={out / (crate + '.png')}",
             (doc_dir / crate / "index.html").resolve().as_uri()],
            check=True, capture_output=True, timeout=60)
    print(f"doc_front_page.py: {out / (crate + '.png')}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("doc_dir", type=Path)
    ap.add_argument("crates", nargs="+")
    ap.add_argument("--screenshot", type=Path)
    opts = ap.parse_args()
    problems = [p for crate in opts.crates for p in check(opts.doc_dir, crate)]
    for problem in problems:
        print(f"doc_front_page.py: {problem}", file=sys.stderr)
    if opts.screenshot:
        for crate in opts.crates:
            screenshot(opts.doc_dir, crate, opts.screenshot)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
