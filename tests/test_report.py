"""analysis.report: markdown and self-contained HTML."""
import numpy as np

from spinsim.analysis.report import fmt, write_report


def test_report_writes_markdown_and_self_contained_html(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    md, html = write_report(tmp_path, "Study", [
        ("Numbers", ["Some **bold** text with `code`.", {"table": [["L3H5", -0.7, 1e-4]], "header": ["head", "r", "p"]}]),
        ("Figure", [{"figure": "f.png", "caption": "a line"}]),
    ])
    text = md.read_text()
    assert "| L3H5 | -0.7 | 1.00e-04 |" in text and "![a line](f.png)" in text
    h = html.read_text()
    assert "data:image/png;base64," in h and "<b>bold</b>" in h and "<code>code</code>" in h


def test_fmt():
    assert fmt(float("nan")) == "n/a" and fmt(0.0) == "0" and fmt(12345678.0) == "1.23e+07" and fmt(np.float64(0.5)) == "0.5"
