"""`render` picks the format's renderer; every format accounts for the same energy."""

from __future__ import annotations

import pytest

from hemera.domain.exports import ExportFormat, render
from tests.export_builders import expected_totals, export_request, sao_paulo_meter, sydney_meter

CONTENT_TYPES = {
    ExportFormat.CSV: ("text/csv; charset=utf-8", "acme_20260404_20260406_v3.csv"),
    ExportFormat.TXT: ("text/plain; charset=utf-8", "acme_20260404_20260406_v3.txt"),
    ExportFormat.NEM12: ("text/csv; charset=utf-8", "NEM12#ACME2026040420260406V3#HEMERA#ACMERETAIL.csv"),
    ExportFormat.GREEN_BUTTON: ("application/atom+xml", "acme_20260404_20260406_v3_green_button.xml"),
    ExportFormat.REGULATORY_XML: ("application/xml", "acme_20260404_20260406_v3_regulatory_hourly.xml"),
}


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_every_format_totals_the_final_days(export_format: ExportFormat) -> None:
    # Both meters have an NMI (NEM12 leaves a meter without one out, see test_nem12)
    meters = [sydney_meter(), sao_paulo_meter(nmi="QAAAVZZZZZ")]
    rendered = render(export_request(export_format, meters, version=3))

    assert (rendered.content_type, rendered.name) == CONTENT_TYPES[export_format]
    assert rendered.totals == expected_totals(meters)
    assert rendered.skipped == ()
    assert rendered.rows > 0 and rendered.content


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_an_export_without_meters_is_an_empty_file_of_the_format(export_format: ExportFormat) -> None:
    rendered = render(export_request(export_format, []))

    assert (rendered.rows, rendered.totals) == (0, {})
