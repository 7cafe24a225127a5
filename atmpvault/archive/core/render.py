"""Templates: the one module that imports Jinja2.

Templates live in atmpvault/templates as NAME.txt.j2 (plain text) and NAME.html.j2
(HTML, autoescaped). Undefined values are errors, never silently empty: a notice or
certificate that lost a field must not go out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from atmpvault.errors import TemplateProblem

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@cache
def environment() -> jinja2.Environment:
    """The shared Jinja2 environment: HTML autoescaped, undefined values refused."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "htm.j2", "xml.j2", "html", "xml"),
            default_for_string=True,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template_name: str, context: dict[str, Any]) -> str:
    """Render one template, e.g. render("milestone-alert.html.j2", {...})."""
    try:
        return environment().get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateProblem(f"no template named {template_name!r} in {TEMPLATES_DIR}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"cannot render template {template_name!r}: {exc}") from exc
    except (TypeError, ValueError, AttributeError, LookupError, ArithmeticError) as exc:
        # A value the template cannot use (a method where text was meant, a bad
        # conversion): the notice must not go out, and the user gets one line.
        raise TemplateProblem(
            f"cannot render template {template_name!r}: {type(exc).__name__}: {exc}"
        ) from exc


def exists(template_name: str) -> bool:
    """Whether the package ships a template of this name."""
    return (TEMPLATES_DIR / template_name).is_file()
