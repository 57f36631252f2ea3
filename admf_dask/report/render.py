"""HTML blocks from Jinja2 templates, and the package's CSS and JavaScript files.

Every HTML fragment of the report comes from ``templates/*.html`` rendered with autoescape on, so
a run name, symbol or grid value such as ``<script>`` reaches the page as text. Only values
wrapped in `markupsafe.Markup` (HTML built by another template) pass unescaped.

The CSS and the CustomJS bodies are files in ``static/``, read with `importlib.resources` and
inlined into the standalone page (the report stays one self-contained file).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from bokeh.models import Div, InlineStyleSheet
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from admf_dask.report.figures import COLORS, FONT, WIDTH

__all__ = ["Markup", "div", "render", "script", "static_text", "stylesheet", "template_div"]


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("admf_dask.report", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt variable is an error, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda v: f"{v:,}"
    return env


def render(template: str, /, **context: Any) -> Markup:
    """Render ``templates/<template>`` (autoescaped); the result can be nested in another one."""
    return Markup(_env().get_template(template).render(**context).strip())


@cache
def static_text(name: str) -> str:
    """The text of ``static/<name>`` (a CSS or JS file shipped as package data)."""
    return resources.files("admf_dask.report").joinpath("static", name).read_text("utf-8")


def script(name: str) -> str:
    """A CustomJS body from ``static/<name>``."""
    return static_text(name)


def _css_variables() -> str:
    """The palette and font of `figures`, as CSS custom properties for the static sheets."""
    return (
        f":host {{ --font: {FONT}; --good: {COLORS['best']}; --bad: {COLORS['worst']}; "
        f"--mid: {COLORS['median']}; }}\n"
    )


def stylesheet(name: str) -> InlineStyleSheet:
    """An InlineStyleSheet of ``static/<name>`` with the palette variables in front."""
    return InlineStyleSheet(css=_css_variables() + static_text(name))


def div(text: str, width: int = WIDTH, **kw: Any) -> Div:
    """A Div of ready HTML (from `render`); the page gives every Div the report's stylesheet."""
    return Div(text=str(text), width=width, **kw)


def template_div(
    template: str, /, width: int = WIDTH, div_kw: dict[str, Any] | None = None, **context: Any
) -> Div:
    """A Div of ``templates/<template>`` rendered with ``context`` (``div_kw``: Div properties)."""
    return div(render(template, **context), width=width, **(div_kw or {}))
