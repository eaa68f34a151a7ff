"""Links on a page: the one a vendor's ``follow`` names, and whether a page is a script shell."""

from __future__ import annotations

from urllib.parse import urljoin

from policy_watch.parse.html import build_tree
from policy_watch.text import collapse

_SHELL_TEXT = 400  # visible characters: a shell shows less than this
_APP_ROOTS = (
    "#__next",
    "#__nuxt",
    "#root",
    "#app",
    "[data-reactroot]",
    "app-root",
    "#svelte",
    "[ng-version]",
)


def find_link(body: bytes | str, content_type: str | None, text: str, base_url: str) -> str | None:
    """The address of the first link whose text or address contains ``text`` (any case)."""
    needle = text.casefold()
    tree = build_tree(body, content_type)
    by_address: str | None = None
    for link in tree.css("a[href]"):
        href = (link.attrs.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        if needle in collapse(link.text()).casefold():
            return urljoin(base_url, href)
        if by_address is None and needle in href.casefold():
            by_address = urljoin(base_url, href)
    return by_address


def looks_like_shell(body: bytes | str, content_type: str | None) -> bool:
    """A page a script builds in the browser: little visible text, and an application root
    element or script bundles."""
    if isinstance(body, bytes) and body.lstrip()[:5] == b"%PDF-":
        return False
    tree = build_tree(body, content_type)
    scripts = tree.css("script[src]")
    root = any(tree.css_first(selector) is not None for selector in _APP_ROOTS)
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    top = tree.body or tree.root
    visible = collapse(top.text(separator=" ")) if top is not None else ""
    return len(visible) < _SHELL_TEXT and (root or bool(scripts))
