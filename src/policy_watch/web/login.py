"""Signing in with the access token: the reviewer's name and the token, once; a signed cookie after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from policy_watch.web.security import SESSION_COOKIE, SESSION_SECONDS

if TYPE_CHECKING:
    from policy_watch.web.pages import Pages

NAME_LIMIT = 100


def _next(value: object) -> str:
    """Only a path on this site: never an address elsewhere (``//host`` or ``/\\host``)."""
    text = value if isinstance(value, str) else "/"
    return text if text.startswith("/") and not text.startswith(("//", "/\\")) else "/"


def login_form(pages: Pages) -> Callable[[Request], Response]:
    def page(request: Request) -> Response:
        if not pages.access.token:
            return RedirectResponse("/", status_code=303)
        return pages.render(request, "login.html", next=_next(request.query_params.get("next")), error=None)

    return page


def login_submit(pages: Pages) -> Callable[[Request], Awaitable[Response]]:
    async def submit(request: Request) -> Response:
        form = await request.form()
        csrf, name, token = (form.get(k) for k in ("csrf", "name", "token"))
        target = _next(form.get("next"))
        if not pages.access.check_csrf(request.state.csrf_cookie, csrf if isinstance(csrf, str) else None):
            return pages.render(
                request,
                "login.html",
                status=403,
                next=target,
                error="The form's security token is missing or stale: try again.",
            )
        name = name.strip() if isinstance(name, str) else ""
        if (
            not name
            or len(name) > NAME_LIMIT
            or not pages.access.check_token(token if isinstance(token, str) else "")
        ):
            return pages.render(
                request, "login.html", status=401, next=target, error="Wrong token, or no name given."
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            pages.access.session_cookie(name),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.state.secure,
        )
        return response

    return submit
