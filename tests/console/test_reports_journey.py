"""The Reports page in Debian's Chromium against a real server: a doctor opens it from the navigation,
picks January, reads the follow-up response by channel and downloads that report's CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import expect

from tests.analytics.test_follow_up_response import dataset  # noqa: F401 (the report's data set)
from tests.console.test_browser import log_in


def test_a_doctor_picks_a_range_reads_the_figures_and_downloads_the_csv(
    tenant,
    live_server,
    page,
    dataset,  # noqa: F811
    tmp_path,
):
    log_in(page, live_server, tenant, role="doctor")
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    page.fill("#from", "2026-01-01")
    page.fill("#to", "2026-01-30")
    page.focus("#to")
    page.keyboard.press("Enter")  # submits the range form
    expect(page).to_have_url(f"{live_server}/console/reports?from=2026-01-01&to=2026-01-30")
    sms = page.locator("#follow-up-channels tbody tr").first
    expect(sms.locator("th")).to_have_text("Text")
    expect(sms.locator("td").nth(0)).to_have_text("1")  # sent
    expect(sms.locator("td").nth(2)).to_have_text("100.0%")  # reply rate
    expect(page.locator("#follow-up-sequences tbody tr").first).to_contain_text("Welcome")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download follow-up response as CSV").click()
    saved = Path(tmp_path) / "follow-up-response.csv"
    caught.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [(r["name"], r["messages"], r["replied"]) for r in rows][:1] == [("sms", "1", "1")]
    assert [r["name"] for r in rows] == ["sms", "email", "whatsapp", "instagram", "Welcome", "no sequence"]
