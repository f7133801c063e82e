"""Reading a console page as a person and a browser do (for the rules and sequences pages' tests): the
text a person sees or hears (no script, no hidden input, no attribute but labels), and what a form
posts as it is drawn (its fields' names and values: the options selected, the boxes ticked)."""

from __future__ import annotations

from html.parser import HTMLParser

HEARD = ("aria-label", "placeholder", "title", "alt")  # attributes a person reads or hears


class _Page(HTMLParser):
    def __init__(self, form_id: str | None):
        super().__init__(convert_charrefs=True)
        self.form_id, self.in_form, self.depth = form_id, form_id is None, 0
        self.texts: list[str] = []
        self.fields: list[tuple[str, str]] = []
        self._skip = 0
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._option: tuple[str, bool] | None = None
        self._area: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        self.texts += [a[name] for name in HEARD if a.get(name)]
        if tag == "form" and self.form_id is not None and a.get("id") == self.form_id:
            self.in_form = True
        if not self.in_form or self._skip:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button"):
                self.fields.append((name, a.get("value", "")))
        elif tag == "select":
            self._select, self._options = name, []
        elif tag == "option":
            self._option = (a.get("value", ""), "selected" in a)
            self._options.append(self._option)
        elif tag == "textarea" and name:
            self._area = (name, [])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "form" and self.form_id is not None and self.in_form:
            self.in_form = False
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [
                value for value, _ in self._options[:1]
            ]
            self.fields += [(self._select, value) for value in chosen]
            self._select = None
        if tag == "textarea" and self._area is not None:
            self.fields.append((self._area[0], "".join(self._area[1]).removeprefix("\n")))
            self._area = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._area is not None:
            self._area[1].append(data)
        if data.strip():
            self.texts.append(data.strip())


def visible_text(html: str) -> str:
    """What a person reads or hears on the page: its text and its labels' attributes, one a line."""
    page = _Page(None)
    page.feed(html)
    return "\n".join(page.texts)


def form_fields(html: str, form_id: str) -> list[tuple[str, str]]:
    """What the form posts as drawn: each (name, value), in order, a name repeated for each box ticked."""
    page = _Page(form_id)
    page.feed(html)
    return page.fields
