"""The rule builder's words in docs/guides/rules-and-sequences.md (the section between the
`rule-words` markers), written from the console's vocabulary (app/console/wording_rules.py):
`make rule-words-doc` (python -m app.devtools.rule_words_doc) rewrites it; tests/console/test_rule_words.py
fails while it is stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOC_PATH = "docs/guides/rules-and-sequences.md"
START = "<!-- rule-words: written by `python -m app.devtools.rule_words_doc` -->"
END = "<!-- /rule-words -->"


def _table(heading: str, column: str, rows) -> list[str]:
    lines = [f"**{heading}**", "", f"| The staff app says | {column} | What it means |", "|---|---|---|"]
    lines += [f"| {label} | `{key}` | {help or ''} |" for key, label, help in rows]
    return [*lines, ""]


def section() -> str:
    """The section's text, markers included."""
    from app.console import wording_rules as w

    lines = [
        START,
        "",
        "The staff app's rule builder, a rule's page, a sequence's page and a lead's why-trail say the",
        "rule language in these words; the API's names are beside them.",
        "",
        *_table("When (triggers)", "Trigger", ((k, t.label, t.help) for k, t in w.TRIGGERS.items())),
    ]
    for group, heading in w.FIELD_GROUPS.items():
        rows = ((k, f.label, f.help) for k, f in w.FIELDS.items() if f.group == group)
        lines += _table(f"If: {heading.lower()} (fields)", "Field", rows)
    lines += _table("How (operators)", "Operator", ((k, o.label, o.help) for k, o in w.OPERATORS.items()))
    lines += _table("Groups", "Group", ((k, g.label, g.help) for k, g in w.GROUPS.items()))
    lines += _table("Then (actions)", "Action type", ((k, a.label, a.help) for k, a in w.ACTIONS.items()))
    lines += _table("Delays, counted in", "Unit", ((k, u.label, u.help) for k, u in w.UNITS.items()))
    lines += _table(
        "A sequence's step waits until",
        "Wait event",
        ((k, e.label, e.help) for k, e in w.WAIT_EVENTS.items()),
    )
    return "\n".join([*lines, END])


def rewritten(text: str) -> str:
    """The page's text with its section brought up to date."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not (start and end):
        raise SystemExit(f"{DOC_PATH} lacks the rule-words markers")
    return head + section() + tail


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m app.devtools.rule_words_doc",
        description=f"Rewrite the rule builder's words in {DOC_PATH} from app/console/wording_rules.py.",
    ).parse_args(argv)
    path = Path(DOC_PATH)
    path.write_text(rewritten(path.read_text()))
    sys.stdout.write(f"{DOC_PATH}: the rule builder's words rewritten\n")


if __name__ == "__main__":
    main()
