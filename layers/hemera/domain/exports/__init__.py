"""Billing export files: CSV, fixed-width TXT, NEM12, Green Button ESPI XML and the regulatory
hourly XML, rendered from final (VEE'd) days. Pure rendering: the export service gathers the
data, stores the file and records the manifest (`RenderedFile.rows`, `RenderedFile.totals`).

Each format lives in its own module; `render` picks one by `ExportRequest.format`.
"""

from __future__ import annotations

from collections.abc import Callable

from hemera.domain.exports.csv_txt import render_csv, render_txt
from hemera.domain.exports.espi import render_green_button
from hemera.domain.exports.model import (
    ExportFormat,
    ExportRequest,
    MeterExportData,
    RenderedFile,
    SkippedMeter,
    totals_key,
)
from hemera.domain.exports.nem12 import render_nem12
from hemera.domain.exports.regulatory import render_regulatory_xml

__all__ = [
    "ExportFormat",
    "ExportRequest",
    "MeterExportData",
    "RenderedFile",
    "SkippedMeter",
    "render",
    "totals_key",
]

_RENDERERS: dict[ExportFormat, Callable[[ExportRequest], RenderedFile]] = {
    ExportFormat.CSV: render_csv,
    ExportFormat.TXT: render_txt,
    ExportFormat.NEM12: render_nem12,
    ExportFormat.GREEN_BUTTON: render_green_button,
    ExportFormat.REGULATORY_XML: render_regulatory_xml,
}


def render(request: ExportRequest) -> RenderedFile:
    """Render the request's export file in `request.format`.

    Raises `ExportNotRenderable` when the data cannot be carried by the format as it is (e.g.
    60-minute intervals in NEM12, a regulatory XML that would not validate against its XSD)."""
    return _RENDERERS[request.format](request)
