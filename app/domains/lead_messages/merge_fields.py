"""Merge-field texts (subjects, bodies, titles of rules, sequences and message templates): checked
when saved, filled in when sent, in a bounded Jinja sandbox. Pure logic: no I/O, no clock."""

from __future__ import annotations

import functools

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MERGE_FIELDS = (
    "first_name",
    "last_name",
    "patient_first_name",
    "clinic_name",
    "coordinator_name",
    "stage",
    "task_due_at",
    "consultation_time",  # a consultation's confirmation and reminders: its start, in the family's time
    "records_expire_on",  # a records expiry reminder: the diagnostic records' last valid day
    "booking_link",  # the lead's own signed link to the clinic's booking page (booking_link.py)
    "consultation_link",  # a consultation's confirmation: its signed page to move or cancel it
    "email_goes_at",  # a rule's note to staff: when the rule's email goes ("goes at 8:00 AM ...")
)
# A merge-field text (subject, body, title) is at most this long, and so is what it renders to.
MAX_TEMPLATE_LENGTH = 5000
MAX_RENDERED_LENGTH = 10_000
_SAMPLE_VALUES = dict.fromkeys(MERGE_FIELDS, "x" * 100)  # as long as a real name or date may be
# What a merge text may use: substitution, filters that cannot grow text, and if/else. No loops,
# calls, macros, imports or assignments, so rendering does a bounded amount of work.
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.If,
    nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Test,
    nodes.Filter, nodes.Concat, nodes.Add, nodes.Getattr, nodes.Getitem, nodes.List, nodes.Tuple,
)  # fmt: skip
_SAFE_FILTERS = (
    "capitalize", "d", "default", "e", "escape", "first", "last", "length", "lower", "string",
    "title", "trim", "truncate", "upper",
)  # fmt: skip


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox (no reach into Python objects), and bounded: no loops, calls or globals
    (`range`, `lipsum`), only filters that cannot grow text, and `+` refused past
    MAX_RENDERED_LENGTH, so neither `{{ 'x' * 200000000 }}` nor a nested loop can make a web or
    worker process build hundreds of megabytes or spin."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self):
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.globals.clear()
        self.filters = {name: self.filters[name] for name in _SAFE_FILTERS}
        self.tests = {name: self.tests[name] for name in ("defined", "undefined", "none", "string")}

    def call_binop(self, context, operator, left, right):
        if operator != "+":
            raise SecurityError(f"the operator {operator} is not allowed in merge text")
        total = sum(len(side) for side in (left, right) if isinstance(side, str | list | tuple))
        if total > MAX_RENDERED_LENGTH:
            raise SecurityError(f"merge text renders to more than {MAX_RENDERED_LENGTH} characters")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):
        raise SecurityError("calls are not allowed in merge text")

    def bounded_template(self, text: str):
        """The compiled text, or a TemplateError when it is too long or uses what is not allowed."""
        if len(text) > MAX_TEMPLATE_LENGTH:
            raise TemplateError(f"merge text is longer than {MAX_TEMPLATE_LENGTH} characters")
        tree = self.parse(text)
        for node in tree.find_all(nodes.Node):
            if not isinstance(node, _ALLOWED_NODES):
                raise TemplateError(f"{type(node).__name__.lower()} is not allowed in merge text")
        return self.from_string(tree)


_MERGE = BoundedSandbox()


def _render_bounded(template, values: dict) -> str:
    """The rendered text, streamed and refused once it passes MAX_RENDERED_LENGTH."""
    parts, size = [], 0
    for part in template.generate(values):
        size += len(part)
        if size > MAX_RENDERED_LENGTH:
            raise SecurityError(f"merge text renders to more than {MAX_RENDERED_LENGTH} characters")
        parts.append(part)
    return "".join(parts)


def merge_field_error(text: str) -> str | None:
    """Why `text` cannot be rendered with the merge fields (an unknown field, bad syntax, too long,
    a loop or call, too much output), or None."""
    try:
        _render_bounded(_MERGE.bounded_template(text), _SAMPLE_VALUES)
    except TemplateError as error:
        return f"{error.message}; merge fields: {', '.join(MERGE_FIELDS)}"
    return None


@functools.lru_cache(maxsize=1024)
def _template(text: str):
    # Compiling a text is costly (jinja generates and compiles Python source); a clinic has
    # few texts and each is merged for every lead, so each is compiled once per process.
    return _MERGE.bounded_template(text)


def merge(text: str, values: dict) -> str:
    """`text` with the merge fields filled in; a TemplateError when it breaks the bounds (a text
    saved before the bounds existed), never an unbounded render."""
    return _render_bounded(_template(text), {name: values.get(name) or "" for name in MERGE_FIELDS})
