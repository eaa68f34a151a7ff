"""PDFs made for the tests with fpdf2: ruled tables over pages, lists without ruling, scans, bombs."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from fpdf import FPDF

Row = tuple[str, str, str]
HEADER: Row = ("Entity", "Purpose", "Location")


def ruled(
    sections: Sequence[tuple[str, Sequence[Row]]],
    updated: str = "Last updated: March 3, 2026",
    header: Row = HEADER,
) -> bytes:
    """A document with a title, a date line, and per section a heading and a ruled table whose
    header repeats on every page it runs over."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.set_font("Helvetica", size=16)
    pdf.cell(0, 10, "Infrastructure and Sub-processors", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 8, updated, new_x="LMARGIN", new_y="NEXT")
    for title, rows in sections:
        pdf.set_font("Helvetica", size=14)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        with pdf.table(col_widths=(50, 70, 50), repeat_headings=1) as table:
            for values in (header, *rows):
                row = table.row()
                for value in values:
                    row.cell(value)
    return bytes(pdf.output())


def unruled(rows: Sequence[Row], published: str = "Published: 5 January 2026") -> bytes:
    """A list set out in columns by position only, no lines; long purposes wrap onto a second line."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.cell(0, 8, published, new_x="LMARGIN", new_y="NEXT")
    y = 30.0
    pdf.set_font("Helvetica", style="B", size=10)
    for x, text in zip((10, 70, 150), ("Subprocessor", "Purpose", "Country"), strict=True):
        pdf.set_xy(x, y)
        pdf.cell(0, 6, text)
    pdf.set_font("Helvetica", size=10)
    y += 8
    for entity, purpose, country in rows:
        pdf.set_xy(10, y)
        pdf.cell(0, 6, entity)
        pdf.set_xy(150, y)
        pdf.cell(0, 6, country)
        pdf.set_xy(70, y)
        pdf.multi_cell(70, 6, purpose)
        y = max(pdf.get_y(), y + 6) + 1
    pdf.set_xy(90, 280)
    pdf.cell(0, 6, "Page 1 of 1")
    return bytes(pdf.output())


def scanned(pages: int = 2) -> bytes:
    """Pages of drawings only, as a scan looks to a reader without OCR: no text layer."""
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        for i in range(20):
            pdf.rect(10, 10 + i * 12, 150, 8, style="F")
    return bytes(pdf.output())


def encrypted(rows: Sequence[Row]) -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    for row in (HEADER, *rows):
        pdf.cell(0, 8, "   ".join(row), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def many_pages(count: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for i in range(count):
        pdf.add_page()
        pdf.cell(0, 8, f"page {i}")
    return bytes(pdf.output())


def stream_bomb(unpacked: int = 300 * 1024 * 1024) -> bytes:
    """A small PDF (about 300 KB) whose one content stream unpacks to ``unpacked`` bytes."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    data = b"".join(packer.compress(chunk) for _ in range(unpacked >> 20)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
