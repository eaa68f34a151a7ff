"""A stored raw page served as evidence: shown, never run.

An HTML page is sent as ``text/plain`` (with nosniff, a browser shows its source and runs none of
its scripts or styles), under a Content-Security-Policy that forbids everything and sandboxes
the response anyway; a PDF is offered as a download, never opened in the page's origin.
"""

from __future__ import annotations

from starlette.responses import Response

from policy_watch.store.reading import Evidence

EVIDENCE_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


def _charset(content_type: str | None) -> str:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value.strip('"'):
            return value.strip('"')
    return "utf-8"


def response(found: Evidence, body: bytes) -> Response:
    headers = {"Content-Security-Policy": EVIDENCE_CSP, "X-Content-Type-Options": "nosniff"}
    kind = (found.content_type or "").lower()
    if "pdf" in kind or body.startswith(b"%PDF-"):
        headers["Content-Disposition"] = f'attachment; filename="snapshot-{found.snapshot_id}.pdf"'
        return Response(body, media_type="application/octet-stream", headers=headers)
    try:
        text = body.decode(_charset(found.content_type), errors="replace")
    except LookupError:  # a charset Python does not know
        text = body.decode("utf-8", errors="replace")
    headers["Content-Disposition"] = f'inline; filename="snapshot-{found.snapshot_id}.txt"'
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8", headers=headers)
