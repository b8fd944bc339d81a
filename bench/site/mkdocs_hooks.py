"""MkDocs hooks (``hooks:`` in mkdocs.yml): the 404 page links like every other page, relatively.

MkDocs renders error pages with root-absolute URLs (``/assets/...``, or the path of
``site_url``), on the assumption that a server shows 404.html at any depth. This site must also
work from ``file://`` and from a sub-path (GitHub Pages serves a project at ``/<repo>/``), where
such URLs lead out of the site and the page loads unstyled. So 404.html, which lives at the root
of the site, is rendered with the same relative URLs as a page at the root (``base_url = "."``).

When a server shows it for a missing page deeper in the site (``/<repo>/models/gone.html``),
those relative URLs would resolve from the wrong folder: templates/theme/partials/base-404.html
finds the site's root from the URL (the part before the first of the site's own top-level
folders, which this hook lists in ``medbench_site_folders``) and sets a ``<base>``.
"""

from __future__ import annotations

from typing import Any

ERROR_PAGE = "404.html"
_folders: list[str] = []


def on_files(files: Any, config: Any) -> Any:
    """Note the site's top-level folders (assets, models, ...), for the 404 page's root finder."""
    _folders[:] = sorted({f.dest_uri.split("/")[0] for f in files if "/" in f.dest_uri})
    return files


def on_template_context(context: dict[str, Any], template_name: str, config: Any) -> dict[str, Any]:
    """Render 404.html with page-relative URLs, as a page at the root of the site."""
    if template_name == ERROR_PAGE:
        context["base_url"] = "."
        context["medbench_site_folders"] = list(_folders)
    return context
