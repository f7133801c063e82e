"""`python -m app.devtools.dev_secrets`: the development secrets `make run` keeps under var/ (each made
once, readable by its owner only), printed as `export NAME=value` lines for a shell.

compose.try.yml's processes start with `eval "$(python -m app.devtools.dev_secrets)"`: its containers
share one var/ volume, so they agree on one SECRET_KEY, one PHI key and one Flower login, made by
whichever starts first and kept across restarts. Nothing else uses them: a production start without
its own secrets refuses (app/platform/config.py)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from app.devtools.runner import development_secrets
from app.platform.config import VAR_DIR


def exports(var_dir: Path = VAR_DIR) -> str:
    return "\n".join(
        f"export {name}={shlex.quote(value)}" for name, value in development_secrets(var_dir).items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.devtools.dev_secrets",
        description="Print the development secrets kept under FOLLOWUP_VAR_DIR (made there once) as "
        "`export NAME=value` lines, for compose.try.yml's processes.",
    )
    parser.parse_args(argv)  # --help prints this and makes nothing
    print(exports())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
