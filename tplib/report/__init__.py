"""The project's HTML report (``tp report``): the paper's Tables 2–3 and Figures 4–7 reproduced beside the
published numbers, TP's diagnostics, the protocol, provenance and costs, from the aggregated tables only."""

from tplib.report.render import render_report

__all__ = ["render_report"]
