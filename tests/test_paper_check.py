from pipelines.scripts.build_paper import _as_typeset


def test_tex_values_are_compared_as_typeset():
    assert _as_typeset("8$\\times$8") == "8\u00d78"
    assert _as_typeset("0.91\\,$\\pm$\\,0.02") == "0.91\u00b10.02"
    assert _as_typeset("12\\%") == "12%"
    assert _as_typeset("+0.370") == "+0.370"
