"""LaTeX to Unicode for text that sources deliver in TeX (BibTeX fields, arXiv author strings).

Accents and symbols become Unicode (``R{\\o}nnow`` → ``Rønnow``, ``Bal\\'azs`` → ``Balázs``),
protective braces go (``{{BERT}}`` → ``BERT``); math (``$x^2$``) is kept verbatim so search can
still index it. Text without a backslash or brace is returned unchanged, fast.
"""

from __future__ import annotations

import re

from pylatexenc.latex2text import LatexNodes2Text

__all__ = ["latex_to_unicode"]

_CONVERTER = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=False)
# pylatexenc renders \textasciicircum as U+02C6 (modifier letter); LaTeX prints an ASCII caret
_CARET = re.compile(r"\\textasciicircum(?:\{\}|(?![A-Za-z]))")


def latex_to_unicode(text: str) -> str:
    if "\\" not in text and "{" not in text and "}" not in text:
        return text
    text = _CARET.sub("^", text)
    try:
        out: str = _CONVERTER.latex_to_text(text)
    except Exception:  # pylatexenc raises assorted errors on broken TeX: keep the raw text
        return text.replace("{", "").replace("}", "")
    return out
