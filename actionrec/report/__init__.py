"""The run report: one self-contained HTML page per tag run, for people.

``gather`` (``data.py``) reads what the page shows from the lake (read-only SQL, the registry, the
evaluation files); ``thumbs.py`` makes small JPEG thumbnails (one decoded frame per video, a
placeholder when a video cannot be read); ``charts.py`` draws inline SVG; ``html.py`` lays the page
out (every string from the lake escaped, images as ``data:`` URIs, no script, no external asset)
and writes it atomically. Imports no torch and no Prefect.
"""

from __future__ import annotations

from actionrec.report.data import ReportSettings
from actionrec.report.html import build_report, report_key, write_report

__all__ = ["ReportSettings", "build_report", "report_key", "write_report"]
