"""Render the report site: results → context → charts → Jinja templates → ``site_src/``.

The output is byte-for-byte reproducible from ``data/`` and ``templates/``: sorted
iteration, no timestamps but those in the data, rounded chart numbers. Every string that
comes from data is escaped for HTML and Markdown by the environment's ``finalize``;
only chart snippets and the filters' formatted numbers are marked safe.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import math
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from bench.results.store import ResultError
from bench.site.aggregate import build_context, sample_site_path
from bench.site.charts import build_charts
from bench.site.demo import demo_assets, demo_context
from bench.site.diagram import build_diagrams
from bench.site.context import Interval, MeanStd, SiteContext, model_page_path
from bench.site.downloads import available_csvs, download_outputs
from bench.site.load import DatasetArtifact, load_datasets, load_results

log = logging.getLogger(__name__)

MANIFEST = ".medbench-site"  # lists the generated files; MkDocs skips dotfiles
MISSING = "—"

# Markdown would read these as markup (tables, emphasis, code, links, attribute lists).
_MARKDOWN_ENTITIES = {"\\": "&#92;", "`": "&#96;", "*": "&#42;", "[": "&#91;", "]": "&#93;",
                      "|": "&#124;", "{": "&#123;", "}": "&#125;"}
_MARKDOWN_CHARS = re.compile(r"[\\`*\[\]|{}]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def escape_text(text: str) -> Markup:
    """A data string made inert in Markdown and HTML, on one line (it may sit in a table cell)."""
    text = html.escape(" ".join(text.split()), quote=True)
    return Markup(_MARKDOWN_CHARS.sub(lambda m: _MARKDOWN_ENTITIES.get(m.group(), "&#95;"), text))


def finalize(value: Any) -> Any:
    """Applied to every ``{{ }}`` output: escape plain strings, show None as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_text(value)
    return value


# --- filters: small named functions, each returns safe formatted text ---------------------------


def fmt(x: float | int | None, digits: int = 3) -> Markup:
    """A number with fixed decimals (ints with thousands separators); None → dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return Markup(MISSING)
    if isinstance(x, bool):
        return Markup("yes" if x else "no")
    if isinstance(x, int):
        return Markup(f"{x:,}")
    return Markup(f"{x:,.{digits}f}")


def sig(x: float | None, digits: int = 3) -> Markup:
    """A number with ``digits`` significant digits but no exponent (latencies span decades)."""
    if x is None or not math.isfinite(x):
        return Markup(MISSING)
    if x == 0:
        return Markup("0")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return Markup(f"{x:,.{decimals}f}")


def pm(value: MeanStd, digits: int = 3) -> Markup:
    """Mean ± std across seeds (mean alone when there is one seed)."""
    if value.mean is None:
        return Markup(MISSING)
    if value.std is None:
        return fmt(value.mean, digits)
    return Markup(f"{value.mean:.{digits}f} ± {value.std:.{digits}f}")


def signed(x: float | None, digits: int = 3) -> Markup:
    """A difference with its sign (+0.012, −0.004); None → dash."""
    if x is None or not math.isfinite(x):
        return Markup(MISSING)
    return Markup(f"{x:+.{digits}f}".replace("-", "−"))


def ci(value: Interval | None, digits: int = 3) -> Markup:
    """An interval as ``lo–hi``."""
    if value is None:
        return Markup(MISSING)
    return Markup(f"{value.lo:.{digits}f}–{value.hi:.{digits}f}")


def pct(x: float | None, digits: int = 1) -> Markup:
    if x is None:
        return Markup(MISSING)
    return Markup(f"{100 * x:.{digits}f}%")


def mparams(x: int | None) -> Markup:
    """A parameter count in millions."""
    if x is None:
        return Markup(MISSING)
    return Markup(f"{x / 1e6:.2f} M")


def _root(page: str) -> str:
    """The relative path from a page back to the docs root (``models/x.md`` → ``../``)."""
    return "../" * page.count("/")


@jinja2.pass_context
def model_link(context: jinja2.runtime.Context, name: str) -> Markup:
    """A model name linked to its own page (plain text where it has none)."""
    site, page = context["site"], context["page"]
    if name not in site.model_page_names:
        return escape_text(name)
    return Markup(f"[{escape_text(name)}]({_root(page)}{model_page_path(name)})")


@jinja2.pass_context
def site_path(context: jinja2.runtime.Context, path: str) -> Markup:
    """A path under the docs root, made relative to the page being rendered."""
    return Markup(_root(context["page"]) + html.escape(path, quote=True))


FILTERS = {"fmt": fmt, "sig": sig, "pm": pm, "signed": signed, "ci": ci, "pct": pct, "mparams": mparams, "model_link": model_link,
           "site_path": site_path}
MODEL_TEMPLATE = "per_model/model.md.j2"


def make_environment(templates_dir: Path) -> jinja2.Environment:
    """The Jinja environment: strict about undefined names, escaping every data string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render_pages(ctx: SiteContext, templates_dir: Path) -> dict[str, str]:
    """``{page.md: Markdown}`` for every ``templates/*.md.j2``, and one page per model."""
    env = make_environment(templates_dir)
    charts = {key: Markup(snippet) for key, snippet in build_charts(ctx).items()}
    diagrams = {key: Markup(svg) for key, svg in build_diagrams(ctx.model_pages).items()}
    pages = {}
    for template in sorted(Path(templates_dir).glob("*.md.j2")):
        page = template.name.removesuffix(".j2")
        pages[page] = env.get_template(template.name).render(site=ctx, charts=charts, diagrams=diagrams, page=page)
    if not pages:
        raise FileNotFoundError(f"{templates_dir}: no page templates (*.md.j2)")
    model_template = env.get_template(MODEL_TEMPLATE) if ctx.model_pages else None
    for model in ctx.model_pages:
        if model.path in pages:
            raise ValueError(f"model {model.name!r}: its page {model.path} is taken; rename the model")
        pages[model.path] = model_template.render(site=ctx, charts=charts, page=model.path, model=model)
    return pages


def _write_outputs(out_dir: Path, outputs: dict[str, bytes]) -> list[Path]:
    """Write ``outputs`` (relative path → bytes) and remove what the previous render wrote but this one did not.

    Only files listed in the previous manifest are ever deleted, and unchanged files are
    not rewritten, so their timestamps stay put.
    """
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        previous = set(manifest.read_text().splitlines()) - {""}
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty and has no {MANIFEST}; refusing to write generated files there")
    else:
        previous = set()
    outside = sorted(p for p in previous if Path(p).is_absolute() or ".." in Path(p).parts)
    if outside:
        raise ValueError(f"{manifest}: lists paths outside {out_dir}: {outside}; refusing to delete them")
    for stale in sorted(previous - set(outputs)):
        path = out_dir / stale
        path.unlink(missing_ok=True)
        log.info("removed stale %s", stale)
        for folder in path.parents:  # drop folders the removal emptied, up to out_dir
            if folder == out_dir or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
    written = []
    for rel, data in sorted(outputs.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    manifest.write_text("".join(f"{rel}\n" for rel in sorted(outputs)))
    return written


def _sample_outputs(datasets: list[DatasetArtifact]) -> dict[str, bytes]:
    """Each class's sample strip by its site path. Two classes whose names map to one path (``a b`` and
    ``a-b``, or names that differ only in case, which some file systems do not tell apart) are refused,
    naming the dataset.json that lists them."""
    outputs: dict[str, bytes] = {}
    owners: dict[str, tuple[str, str]] = {}  # lower-cased site path → (dataset, class)
    for artifact in datasets:
        for class_name, png in sorted(artifact.samples.items()):
            target = sample_site_path(artifact.name, class_name)
            other = owners.setdefault(target.lower(), (artifact.name, class_name))
            if other != (artifact.name, class_name):
                whose = "" if other[0] == artifact.name else f" of dataset {other[0]!r}"
                raise ResultError(artifact.root / "dataset.json",
                                  f"classes {other[1]!r}{whose} and {class_name!r} map to one site path, {target}; "
                                  "rename one of them")
            outputs[target] = png.read_bytes()
    return outputs


def render_site(results_dir: Path, artifacts_dir: Path, templates_dir: Path, out_dir: Path) -> list[Path]:
    """Render the pages and copy their assets into ``out_dir``; returns the generated files.

    Files this function generated before and no longer generates are removed; a bad
    result file raises ``ResultError`` naming it, before anything is written.
    """
    results = load_results(results_dir)
    datasets = load_datasets(artifacts_dir)
    samples = _sample_outputs(datasets)
    downloads = download_outputs(results)
    present = frozenset(p.relative_to(artifacts_dir).as_posix() for folder in ("explain", "shift")
                        for p in (Path(artifacts_dir) / folder).rglob("*") if p.is_file())
    ctx = build_context(results, datasets, available_csvs(downloads), present)
    ctx = dataclasses.replace(ctx, demo=demo_context(results, Path(artifacts_dir), Path(templates_dir) / "theme"))
    outputs = {page: text.encode() for page, text in render_pages(ctx, templates_dir).items()}
    outputs.update(downloads)
    if ctx.demo is not None:
        outputs.update(demo_assets(ctx.demo, Path(artifacts_dir)))
    outputs.update(samples)
    for group in ctx.explain:
        for item in group.gallery:
            outputs[item.src] = (Path(artifacts_dir) / item.src.removeprefix("assets/")).read_bytes()
    for studied in ctx.robustness:
        for src in studied.examples.values():
            outputs[src] = (Path(artifacts_dir) / src.removeprefix("assets/")).read_bytes()
    written = _write_outputs(Path(out_dir), outputs)
    log.info("rendered %d pages and %d assets into %s", len([p for p in outputs if p.endswith(".md")]),
             len([p for p in outputs if not p.endswith(".md")]), out_dir)
    return written
