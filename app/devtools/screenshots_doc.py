"""docs/screenshots.md, written from the pictures `make screenshots` took (docs/screenshots/*-desk.png
and *-phone.png): `make screenshots` ends with it; tests/test_docs.py fails while the page lists a
picture that is not there or leaves one out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FOLDER = Path("docs/screenshots")
HEAD = """# The staff pages, pictured

Each staff page at a desk's width (1280 px) and a phone's (390 px), as the role it is for, in
Debian's Chromium. `make screenshots` takes them: the every-page check (`tests/console/test_every_page.py`)
photographs each page it opens when `FOLLOWUP_SCREENSHOTS` names a folder, so a new page in its list
is pictured by the next run. Never edited by hand.

| page | desk | phone |
|---|---|---|
"""


def document(folder: Path = FOLDER) -> str:
    pages = sorted(path.name.removesuffix("-desk.png") for path in folder.glob("*-desk.png"))
    rows = [
        f'| `{page}` | ![{page} at a desk\'s width](screenshots/{page}-desk.png){{ width="480" }} '
        f'| ![{page} at a phone\'s width](screenshots/{page}-phone.png){{ width="160" }} |\n'
        for page in pages
    ]
    return HEAD + "".join(rows)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        description="Print docs/screenshots.md for the pictures in docs/screenshots (make screenshots)."
    ).parse_args(argv)
    sys.stdout.write(document())


if __name__ == "__main__":
    main()
