"""Small helpers shared by the printable PDFs (cards, letters).

Japanese text uses reportlab's built-in CID fonts (no font file to ship);
digits and codes use Helvetica, which prints clearly and extracts cleanly.
"""

from __future__ import annotations

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

GOTHIC = "HeiseiKakuGo-W5"
MINCHO = "HeiseiMin-W3"
DIGITS = "Helvetica-Bold"


def register_fonts() -> None:
    for name in (GOTHIC, MINCHO):
        try:
            pdfmetrics.getFont(name)
        except KeyError:
            pdfmetrics.registerFont(UnicodeCIDFont(name))


def fit_size(text: str, font: str, size: float, max_width: float, min_size: float = 6) -> float:
    """The largest font size up to ``size`` at which ``text`` fits ``max_width``."""
    while size > min_size and pdfmetrics.stringWidth(text, font, size) > max_width:
        size -= 0.5
    return size


def draw_qr(canvas, value: str, x: float, y: float, size: float) -> None:
    """A QR code (error correction M) as vector shapes, ``size`` points square."""
    widget = QrCodeWidget(value, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    w, h = x1 - x0, y1 - y0
    drawing = Drawing(size, size, transform=[size / w, 0, 0, size / h, 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)
