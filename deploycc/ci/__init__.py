"""``deploycc ci``: build and verify every (model, target) pair of a project file, gate, report.

    from deploycc.ci import load_config, run_ci, write_reports
    cfg = load_config("deploycc.toml")
    report = run_ci(cfg)                  # builds served from the content-hashed cache when unchanged
    write_reports(report, cfg.output)     # junit.xml, report.json, report.html (+ PNG plots)

May import ``deploycc.lut`` (the latency gate) and everything below it; never fleet, train or cli.
"""

from .config import Config, load_config
from .reports import junit_xml, write_reports
from .runner import failure_line, run_ci

__all__ = ["Config", "failure_line", "junit_xml", "load_config", "run_ci", "write_reports"]
