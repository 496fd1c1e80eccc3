"""MkDocs hook (mkdocs.yml ``hooks:``): Sphinx roles in docstrings become cross-references.

corenet's docstrings use Sphinx roles (``:class:`~corenet.errors.ShapeError```), which
mkdocstrings renders as Markdown, where they would show as raw text. Each role becomes an
optional autorefs cross-reference: a link where the target is documented on the site, plain
code otherwise. ``~a.b.C`` shows ``C``; ``title <a.b.C>`` shows ``title``.
"""

from __future__ import annotations

import html
import re

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>([^<]*)</code>")
TITLED = re.compile(r"(.+?)\s*<([\w.]+)>")


def _reference(match: re.Match) -> str:
    text = html.unescape(match.group(1)).strip()
    titled = TITLED.fullmatch(text)
    if titled:
        title, target = titled.groups()
    else:
        target = text.lstrip("~")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    return f'<autoref identifier="{html.escape(target)}" optional><code>{html.escape(title)}</code></autoref>'


def on_page_content(html_text: str, **kwargs) -> str:
    """Rewrite the roles in a page's HTML (autorefs resolves the references afterwards)."""
    return ROLE.sub(_reference, html_text)
