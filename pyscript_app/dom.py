"""Small DOM helpers for every part of the page: elements by id, event listeners whose
proxies live as long as the page, tasks started from synchronous handlers, the status line.

Handlers stay synchronous and start tasks (`spawn`), which both MicroPython and Pyodide
support. Text reaches the DOM through `textContent` only, so nothing from a URL, a file
name or a message is ever parsed as HTML.
"""

import asyncio

from pyscript import document
from pyscript.ffi import create_proxy

PROXIES = []  # every listener's proxy: one that is collected silently breaks its listener


def el(element_id: str):
    """A page element by id."""
    return document.getElementById(element_id)


def listen(element, event: str, handler) -> None:
    """addEventListener with a proxy that lives as long as the page."""
    proxy = create_proxy(handler)
    PROXIES.append(proxy)
    element.addEventListener(event, proxy)


def spawn(coroutine) -> None:
    """Run a coroutine from a synchronous event handler."""
    asyncio.create_task(coroutine)


def show_status(text: str, error: bool = False) -> None:
    """The page's one status line; `error` marks it as a problem."""
    node = el("status")
    node.textContent = text
    if error:
        node.classList.add("error")
    else:
        node.classList.remove("error")
