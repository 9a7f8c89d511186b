"""Each report kind opened in headless Chromium: it renders with no console error, loads nothing from
anywhere, shows its sections and decodes every image; a full-page screenshot of each is kept under
build/test-artifacts/reports/ (the path is printed; run pytest with -s to see it)."""

from __future__ import annotations

import pytest
from browser import Browser, missing
from helpers import REPO

SHOTS = REPO / "build" / "test-artifacts" / "reports"

EXPECTED = {
    "build": (
        ["pipeline-stages", "passes", "legality-map", "numerics-vs-reference"],
        ["stages", "pass-nodes", "legality", "numerics"],
    ),
    "verify": (
        ["accuracy", "per-class-iou", "confusion-matrix", "samples", "numerics-vs-reference", "gates"],
        ["iou", "confusion", "samples"],
    ),
    "bench": (
        ["latency-distribution", "per-layer-profile"],
        ["latency-histogram", "latency-runs", "profile-layers", "profile-nodes"],
    ),
    "inspect": (
        ["macs-per-layer", "parameters-per-layer", "ops", "legality-map"],
        ["macs", "params", "ops", "legality"],
    ),
}


@pytest.fixture(scope="module")
def browser():
    reason = missing()
    if reason:
        pytest.skip(f"headless Chromium unavailable: {reason}")
    b = Browser()
    yield b
    b.close()


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_report_renders_in_chromium(browser, reports, kind):
    seen = browser.render(reports[kind], SHOTS / f"{kind}.png")
    print(f"\n{kind} report screenshot: {seen['screenshot']}")
    sections, figures = EXPECTED[kind]
    assert seen["errors"] == []
    assert seen["kind"] == kind
    assert seen["resources"] == []  # self-contained: nothing fetched
    assert seen["sections"] == sections
    assert seen["figures"] == figures
    assert seen["images"] and all(i["ok"] and i["w"] > 100 for i in seen["images"]), seen["images"]
    assert seen["screenshot"].stat().st_size > 10_000 and seen["height"] > 800


def test_verdicts_are_shown_as_badges(browser, reports):
    build = browser.render(reports["build"], SHOTS / "build.png")
    assert build["verdicts"][0] == "passed"  # the header badge, then one per output
    verify = browser.render(reports["verify"], SHOTS / "verify.png")
    assert verify["verdicts"][0] == "failed"  # the header: the numerics gate failed
    assert sorted(verify["verdicts"][-3:]) == ["failed", "passed", "passed"]  # the gates table


def test_ci_report_links_each_pairs_build_and_verify_reports(browser, reports):
    seen = browser.render(reports["ci"], SHOTS / "ci.png")
    print(f"\nci report screenshot: {seen['screenshot']}")
    assert seen["errors"] == [] and seen["resources"] == [] and seen["kind"] == "ci"
    assert seen["sections"][0] == "pairs" and seen["sections"][-1] == "gates"
    assert all(i["ok"] for i in seen["images"]) and seen["verdicts"][0] == "passed"
    pair_links = [href for href in seen["links"] if not href.startswith("#")]
    assert pair_links == ["pairs/golden@cpu-ort/build.html", "pairs/golden@cpu-ort/verify.html"]
    for href, kind in zip(pair_links, ("build", "verify")):
        linked = browser.render(reports["ci"].parent / href, SHOTS / f"ci-{kind}.png")
        assert linked["kind"] == kind and linked["errors"] == [] and all(i["ok"] for i in linked["images"])
