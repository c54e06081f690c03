"""The curation report: WS/report/index.html, one self-contained page (inline CSS and SVG, no
scripts, nothing loaded from the network) with the funnel, domain mix, length histograms,
verification pass rates, duplicate clusters and contamination hits. `curate` writes it at the end
of every run; `write_report(WS)` rewrites it."""

from curate.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
