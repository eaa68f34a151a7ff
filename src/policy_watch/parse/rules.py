"""Per-vendor CSS-selector rules: used instead of the built-in layouts when a vendor has them."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from policy_watch.errors import ParseError
from policy_watch.models import Entry, ParseRules
from policy_watch.parse.base import LayoutResult, make_entry
from policy_watch.parse.document import Page
from policy_watch.parse.html import heading_text, node_text, with_sections


def _check(tree: LexborHTMLParser, name: str, selector: str | None) -> None:
    if selector is None:
        return
    try:
        tree.css_first(selector)
    except SelectolaxError as exc:
        raise ParseError(f"rules.{name}: invalid CSS selector {selector!r}") from exc


def _field(row: LexborNode, selector: str | None) -> str:
    if selector is None:
        return ""
    node = row.css_first(selector)
    return node_text(node) if node is not None else ""


def _rows(tree: LexborHTMLParser, rules: ParseRules) -> list[tuple[LexborNode, str]]:
    row_css = rules.row or ""
    if rules.section is None:
        return list(with_sections(tree, row_css))
    rows = {node.mem_id for node in tree.css(row_css)}
    found: list[tuple[LexborNode, str]] = []
    section = ""
    for node in tree.css(f"{rules.section}, {row_css}"):
        if node.mem_id in rows:
            found.append((node, section))
        else:
            section = heading_text(node)
    return found


def read_rules(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "rules": one entry per ``rules.row`` match, fields from selectors inside it."""
    if not rules.row:
        return LayoutResult()
    tree = page.tree
    for name in ("row", "entity", "purpose", "country", "section"):
        _check(tree, name, getattr(rules, name))
    entries: list[Entry] = []
    rows = _rows(tree, rules)
    for row, section in rows:
        page.deadline.check()
        entity = _field(row, rules.entity) if rules.entity else node_text(row)
        if entity:
            entries.append(
                make_entry(section, entity, _field(row, rules.purpose), _field(row, rules.country))
            )
    if entries:
        return LayoutResult(tuple(entries))
    if rows:
        return LayoutResult(
            seen=(
                f"rules.row {rules.row!r} matched {len(rows)} elements, none with an entity ({rules.entity!r})",
            )
        )
    return LayoutResult(seen=(f"rules.row {rules.row!r} matched nothing",))
