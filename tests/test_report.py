"""analysis.report: one Markdown source, rendered to self-contained HTML by markdown-it-py."""
import numpy as np
import pytest

from spinsim.analysis.report import fmt, render_html, render_markdown, write_report


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
    assert "data:image/png;base64," in h and "<strong>bold</strong>" in h and "<code>code</code>" in h
    assert '<td style="text-align:left">L3H5</td>' in h and h.count("<table>") == 1


def test_pipes_in_cells_and_warnings_keep_the_markdown_valid():
    """A header such as 'mean |shift|' broke report.md's table; both files now show one table with
    the cell intact, and a warning block renders as a block quote in both."""
    text = render_markdown("T", [("S", [{"table": [["L1H2", 0.5]], "header": ["head", "mean |shift|"]},
                                        {"warning": "2 boundary points come from runs flagged unreliable"}])])
    assert "| head | mean \\|shift\\| |" in text
    h = render_html(text, "T")
    assert '<th style="text-align:right">mean |shift|</th>' in h and '<td style="text-align:right">0.5</td>' in h
    assert h.count("<tr>") == 2
    assert "<blockquote>" in h and "<strong>Warning:</strong> 2 boundary points" in h
    with pytest.raises(ValueError, match="row has 1 cells, the header 2"):
        render_markdown("T", [("S", [{"table": [["x"]], "header": ["a", "b"]}])])


def test_raw_html_in_the_source_is_escaped():
    h = render_html("a <script>alert(1)</script> b", "<T>")
    assert "<script>" not in h and "&lt;script&gt;" in h and "<title>&lt;T&gt;</title>" in h


def test_fmt():
    assert fmt(float("nan")) == "n/a" and fmt(0.0) == "0" and fmt(12345678.0) == "1.23e+07" and fmt(np.float64(0.5)) == "0.5"


def test_weights_note_names_the_gguf_quantisation():
    from spinsim.analysis.demo_report import CITATION, weights_note

    note = weights_note("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert note.startswith("4-bit Q4_1 quantised GGUF weights") and "dequantised to float32" in note
    assert weights_note("m.Q8_0.gguf").startswith("8-bit Q8_0") and weights_note(None).startswith("full-precision")
    assert "Bhattacharjee" in CITATION and "2507.00683" in CITATION and "Phys. Rev. E 113, 015308" in CITATION


def test_phase_prose_says_when_the_tempering_ladder_did_not_exchange():
    """The demo report reads the sweep's own exchange diagnostics: a ladder whose neighbours never
    swapped is said plainly (independent chains; a denser ladder, not more sweeps), one that
    exchanged gives its median acceptance, a sweep without exchange says one chain per T."""
    from types import SimpleNamespace

    from spinsim.analysis.demo_report import _exchange_note

    stuck = SimpleNamespace(tempering={"swap_acceptance": np.array([[0.0, 0.0, 0.29], [0.0, 0.0, 0.0]]),
                                       "n_round_trips": np.array([0.0, 0.0])})
    note = _exchange_note(stuck)
    assert "**but the ladder did not exchange**: median swap acceptance 0 over 6 neighbouring pairs" in note
    assert "(largest 0.29), 0 round trips" in note and "a denser T ladder, not more sweeps" in note
    mixing = SimpleNamespace(tempering={"swap_acceptance": np.array([[0.4, 0.3, 0.5]]), "n_round_trips": np.array([7.0])})
    assert _exchange_note(mixing) == ("parallel tempering across T (median swap acceptance 0.4 over 3 neighbouring "
                                      "pairs, 7 round trips)")
    assert _exchange_note(SimpleNamespace(tempering=None)) == "one chain per temperature"


def test_table_columns_align_numbers_right_and_text_left():
    md = render_markdown("t", [("s", [{"table": [[1.5, "a note"], [2, "another"]], "header": ["h", "warnings"]}])])
    assert "| h | warnings |\n| ---: | :--- |" in md
    h = render_html(md, "t")
    assert '<td style="text-align:right">1.5</td>' in h and '<td style="text-align:left">a note</td>' in h


def test_row_warnings_condensed_from_the_rhat_values():
    """The phase table reads a row's R-hat flags from its values (one entry instead of one long
    sentence per temperature); other warnings are kept once each."""
    from types import SimpleNamespace

    from spinsim.analysis.demo_report import _row_flags

    ph = SimpleNamespace(T=np.array([0.1, 0.5, 2.0]), data={"rhat": np.array([[1.73, 1.0, 1.14]])})
    warn = ["T=0.1: split R-hat = 1.730 > 1.01 across 4 chain(s) (...)", "T=2: split R-hat = 1.140 > 1.01 (...)",
            "no replica completed a round trip", "no replica completed a round trip"]
    assert _row_flags(ph, 0, warn) == [
        "split R-hat > 1.01 at 2 of 3 temperatures (T = 0.1, 2; largest 1.730): not converged or metastable there",
        "no replica completed a round trip"]
