"""TeX math of the gallery's summaries as plain HTML (Unicode, ``<sub>``, ``<sup>``, ``<i>``).

The contact sheet is a static page that must render offline, so no MathJax
or KaTeX from a CDN. The summaries use a small part of TeX (symbols, Greek,
sub- and superscripts, ``\\frac``, ``\\sqrt``, accents, ``\\mathcal``/``\\mathbb``/
``\\mathrm``), which maps well to Unicode text: the result is selectable,
searchable, a few bytes per formula, and readable with scripts and styles
off. An unknown command is kept as its name (without the backslash).
"""

from __future__ import annotations

import html

__all__ = ["tex_to_html"]

_GREEK = dict(
    zip(
        [
            "alpha",
            "beta",
            "gamma",
            "delta",
            "epsilon",
            "zeta",
            "eta",
            "theta",
            "iota",
            "kappa",
            "lambda",
            "mu",
            "nu",
            "xi",
            "pi",
            "rho",
            "sigma",
            "tau",
            "upsilon",
            "phi",
            "chi",
            "psi",
            "omega",
        ],
        "αβγδϵζηθικλμνξπρστυϕχψω",
    )
)
_SYMBOLS: dict[str, str] = {
    **_GREEK,
    "varepsilon": "ε",
    "epsilon": "ϵ",
    "varphi": "φ",
    "phi": "ϕ",
    "vartheta": "ϑ",
    "Gamma": "Γ",
    "Delta": "Δ",
    "Theta": "Θ",
    "Lambda": "Λ",
    "Xi": "Ξ",
    "Pi": "Π",
    "Sigma": "Σ",
    "Phi": "Φ",
    "Psi": "Ψ",
    "Omega": "Ω",
    "leftarrow": "←",
    "rightarrow": "→",
    "to": "→",
    "gets": "←",
    "Rightarrow": "⇒",
    "cdot": "·",
    "times": "×",
    "le": "≤",
    "leq": "≤",
    "ge": "≥",
    "geq": "≥",
    "ne": "≠",
    "neq": "≠",
    "approx": "≈",
    "sim": "∼",
    "propto": "∝",
    "in": "∈",
    "infty": "∞",
    "partial": "∂",
    "nabla": "∇",
    "sum": "∑",
    "prod": "∏",
    "int": "∫",
    "pm": "±",
    "dots": "…",
    "ldots": "…",
    "cdots": "⋯",
    "top": "⊤",
    "odot": "⊙",
    "otimes": "⊗",
    "lVert": "‖",
    "rVert": "‖",
    "|": "‖",
    "lvert": "|",
    "rvert": "|",
    "mid": "|",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "langle": "⟨",
    "rangle": "⟩",
    "{": "{",
    "}": "}",
    "%": "%",
    "_": "_",
    "&": "&",
    "#": "#",
    ",": "\u2009",
    ";": "\u2005",
    ":": "\u2005",
    " ": " ",
    "!": "",
    "quad": "\u2003",
    "qquad": "\u2003\u2003",
    "left": "",
    "right": "",
    "big": "",
    "Big": "",
}
_NAMES = set(
    [
        "ln",
        "log",
        "exp",
        "sin",
        "cos",
        "tan",
        "tanh",
        "sinh",
        "cosh",
        "min",
        "max",
        "arg",
        "argmin",
        "argmax",
        "det",
        "lim",
        "sup",
        "inf",
    ]
)
_ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304", "vec": "\u20d7", "dot": "\u0307"}
_CAL = {c: ch for c, ch in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "𝒜ℬ𝒞𝒟ℰℱ𝒢ℋℐ𝒥𝒦ℒℳ𝒩𝒪𝒫𝒬ℛ𝒮𝒯𝒰𝒱𝒲𝒳𝒴𝒵")}
_BB = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
_PLAIN = {"-": "−", "'": "′", "*": "∗"}


class _Parser:
    def __init__(self, tex: str):
        self.s, self.i = tex, 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def command(self) -> str:
        start = self.i = self.i + 1  # after the backslash
        while self.i < len(self.s) and self.s[self.i].isalpha():
            self.i += 1
        if self.i == start and self.i < len(self.s):  # \, \| \{ ...
            self.i += 1
        return self.s[start : self.i]

    def group_text(self) -> str:
        """The raw text of the next ``{...}`` group or single character."""
        while self.peek() == " ":
            self.i += 1
        if self.peek() != "{":
            if self.peek() == "\\":
                return "\\" + self.command()
            ch = self.peek()
            self.i += 1
            return ch
        depth, start = 0, self.i
        while self.i < len(self.s):
            ch = self.s[self.i]
            depth += (ch == "{") - (ch == "}")
            self.i += 1
            if depth == 0:
                return self.s[start + 1 : self.i - 1]
        return self.s[start + 1 :]

    def argument(self, upright: bool = False) -> str:
        return _Parser(self.group_text()).run(upright)

    def run(self, upright: bool = False) -> str:
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\":
                out.append(self._command(self.command(), upright))
            elif ch in "^_":
                self.i += 1
                tag = "sup" if ch == "^" else "sub"
                out.append(f"<{tag}>{self.argument(upright)}</{tag}>")
            elif ch == "{":
                out.append(self.argument(upright))
            elif ch.isalpha():
                j = self.i
                while j < len(self.s) and self.s[j].isalpha():
                    j += 1
                word = html.escape(self.s[self.i : j])
                out.append(word if upright else f"<i>{word}</i>")
                self.i = j
            else:
                out.append(html.escape(_PLAIN.get(ch, ch)))
                self.i += 1
        return "".join(out)

    def _command(self, name: str, upright: bool) -> str:
        if name in _SYMBOLS:
            return html.escape(_SYMBOLS[name])
        if name in _NAMES:
            return name
        if name == "frac":
            num, den = self.argument(upright), self.argument(upright)
            wrap = lambda t: t if len(_strip(t)) <= 1 else f"({t})"  # noqa: E731
            return f"{wrap(num)}/{wrap(den)}"
        if name == "sqrt":
            return f"√({self.argument(upright)})"
        if name in _ACCENTS:
            return self.argument(upright) + _ACCENTS[name]
        if name in ("mathrm", "operatorname", "text", "textrm", "mathsf"):
            return self.argument(upright=True)
        if name == "mathcal":
            raw = self.group_text()
            return "".join(_CAL.get(c, c) for c in raw.strip())
        if name == "mathbb":
            raw = self.group_text()
            return "".join(_BB.get(c, c) for c in raw.strip())
        if name in ("mathbf", "boldsymbol", "bm"):
            return f"<b>{self.argument(upright)}</b>"
        return html.escape(name)  # unknown: its name, readable


def _strip(markup: str) -> str:
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def tex_to_html(tex: str) -> str:
    """TeX math (the inside of ``:math:`...```) as HTML text.

    >>> tex_to_html(r"w \\leftarrow w + \\eta\\,(t - \\hat y)\\,x")
    '<i>w</i> ← <i>w</i> + η\\u2009(<i>t</i> − <i>y</i>\\u0302)\\u2009<i>x</i>'
    >>> tex_to_html(r"\\mathcal N(0, 0.01^2)")
    '𝒩(0, 0.01<sup>2</sup>)'
    >>> tex_to_html(r"\\frac{1}{2}(y - \\hat y)^2")
    '1/2(<i>y</i> − <i>y</i>\\u0302)<sup>2</sup>'
    """
    return _Parser(tex).run()
