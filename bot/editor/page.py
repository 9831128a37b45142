"""The editor's HTML: the page that marks a region, and the page that says why a link cannot be used.

The markup, style and script are files beside this module (page.html, page.css, page.js) so that each reads
as what it is; they are inlined into every answer, so the page loads nothing but its own image from the
listener: no third-party script, font or CDN. A strict Content-Security-Policy lets only the inlined script
and style run, by a nonce new for each answer.
"""

from __future__ import annotations

import html
import secrets
from functools import cache
from importlib.resources import files

__all__ = ["editor_page", "new_nonce", "page_headers", "refusal_page"]


@cache
def _asset(name: str) -> str:
    return files(__package__ or "bot.editor").joinpath(name).read_text(encoding="utf-8")


def new_nonce() -> str:
    """A nonce for one answer's Content-Security-Policy (128 random bits)."""
    return secrets.token_urlsafe(16)


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass over the template: a value that happens to hold "@@NAME@@" is never filled in again.
    parts = template.split("@@")
    for index in range(1, len(parts), 2):
        parts[index] = values[parts[index]]
    return "".join(parts)


def editor_page(*, image_url: str, width: int, height: int, prompt: str, max_prompt: int, nonce: str) -> str:
    """The editor for an original of `width` x `height` pixels, shown from `image_url`, its prompt prefilled.

    `image_url` is relative to the page's own URL (e.g. "<token>/image"), so the page works behind a proxy
    that serves the listener under a path prefix.
    """
    # The script is not escaped: it is ours, and "</" in it would end the element (none is there).
    return _fill(_asset("page.html"), {
        "NONCE": nonce,
        "CSS": _asset("page.css"),
        "JS": _asset("page.js"),
        "IMAGE": html.escape(image_url),
        "WIDTH": str(int(width)),
        "HEIGHT": str(int(height)),
        "PROMPT": html.escape(prompt, quote=False),
        "MAX_PROMPT": str(int(max_prompt)),
    })


def refusal_page(sentence: str, *, nonce: str) -> str:
    """The page for a link that cannot be used: the sentence alone, no script."""
    return _fill(_asset("refusal.html"), {"NONCE": nonce, "CSS": _asset("page.css"),
                                          "SENTENCE": html.escape(sentence)})


def page_headers(nonce: str, *, script: bool) -> dict[str, str]:
    """Headers for an editor answer: its CSP (the script's only with `script`), never cached nor framed.

    The token is in the URL, so nothing may keep it: no cache, no Referer sent to anything the page loads,
    no search engine indexing it.
    """
    policy = ["default-src 'none'", f"style-src 'nonce-{nonce}'", "base-uri 'none'", "form-action 'none'",
              "frame-ancestors 'none'"]
    if script:
        policy += [f"script-src 'nonce-{nonce}'", "img-src 'self'", "connect-src 'self'"]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
    }
