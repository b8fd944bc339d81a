"""The report-site generator: result JSON → typed context → charts → Markdown pages.

``bench.site.render.render_site`` is the entry point. Nothing here imports torch,
timm, captum or fvcore: the Pages workflow installs only the site's light dependencies.
"""
