# ruff: noqa: E501 (a formula is one line)
"""The formulas the math converters are measured on (bench/math_converters.py).

`content_formulas()` reads every post in content/ as the site does; `SEEDLIKE`
is a set written for this project in the style of the machine-learning notes
the writer follows (bold vectors, calligraphic sets, expectations, infima,
double integrals, norms, matrices, cases): display math written inside
paragraphs, inline math next to Chinese text.
"""

from __future__ import annotations

from pathlib import Path

from aggregator.texmath import formulas
from aggregator.text import _markdown

CONTENT = Path(__file__).resolve().parent.parent / "content"

SEEDLIKE: tuple[tuple[str, bool], ...] = (
    (
        r"\mathbf{z}_t=\sqrt{\alpha_t}\,\mathbf{z}_{t-1}+\sqrt{1-\alpha_t}\,\boldsymbol{\epsilon}",
        True,
    ),
    (
        r"q(\mathbf{z}_{1:T}\mid\mathbf{z}_0)=\prod_{t=1}^{T} q(\mathbf{z}_t\mid\mathbf{z}_{t-1})",
        True,
    ),
    (
        r"\mathcal{D}[\mu,\nu]=\inf_{\pi\in \Gamma(\mu,\nu)} \iint \pi(\boldsymbol{u},\boldsymbol{v})\, c(\boldsymbol{u},\boldsymbol{v})\, d\boldsymbol{u}\,d\boldsymbol{v}",
        True,
    ),
    (r"\mu(u),\nu(v)", False),
    (r"c(u,v)", False),
    (r"\boldsymbol{h}", False),
    (
        r"\min_{G}\max_{D}\; \mathbb{E}_{u\sim \mu}[\log D(u)]+\mathbb{E}_{w\sim \rho}[\log(1-D(G(w)))]",
        True,
    ),
    (r"D^{*}(u)=\frac{\mu(u)}{\mu(u)+\mu_G(u)}", True),
    (r"\mathrm{KL}(\mu\,\|\,\nu)=\int \mu(u)\log\frac{\mu(u)}{\nu(u)}\,du", True),
    (r"\operatorname{JS}(\mu\Vert\nu)", False),
    (r"\|\boldsymbol{a}-\boldsymbol{b}\|_2^2", False),
    (r"\hat{\boldsymbol{y}}=\operatorname*{arg\,max}_{k} \; s_k", True),
    (r"\arg\min_k \|z_e - e_k\|_2", False),
    (r"\nabla_{\theta} \mathcal{L}(\theta)", False),
    (r"\frac{\partial \mathcal{L}}{\partial w_{ij}}", False),
    (r"\sum_{i=1}^{n} x_i^2 \le \left(\sum_{i=1}^{n} |x_i|\right)^2", True),
    (r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}\begin{pmatrix} x \\ y \end{pmatrix}", True),
    (r"f(x)=\begin{cases} 1, & x>0 \\ 0, & \text{otherwise} \end{cases}", True),
    (
        r"\begin{aligned} L &= \mathbb{E}\left[\|u-\hat u\|^2\right] \\ &\approx \frac{1}{N}\sum_{n} \|u_n-\hat u_n\|^2 \end{aligned}",
        True,
    ),
    (r"\mathrm{softmax}(\boldsymbol{s})_i=\frac{e^{s_i}}{\sum_j e^{s_j}}", True),
    (
        r"\operatorname{Attn}(Q,K,V)=\operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right)V",
        True,
    ),
    (r"\tilde{\boldsymbol{x}}", False),
    (r"\bar{x}=\frac1n\sum_i x_i", False),
    (r"\mathcal{N}(\mathbf{0},\mathbf{I})", False),
    (r"p_\theta(x_{t-1}\mid x_t)", False),
    (r"\epsilon_\theta", False),
    (r"\overline{\alpha}_t=\prod_{s=1}^{t}\alpha_s", False),
    (r"\underbrace{a+b}_{\text{sum}}", True),
    (r"x \xrightarrow{f} y", False),
    (r"\lim_{n\to\infty} \left(1+\frac{1}{n}\right)^n = e", True),
    (r"\int_0^1 x^2\,dx=\tfrac13", False),
    (r"\binom{n}{k}=\frac{n!}{k!(n-k)!}", False),
    (r"\mathbb{R}^{d\times d}", False),
    (r"O(N^2 d)", False),
    (r"\ell_1", False),
    (r"\langle u, v\rangle", False),
    (r"a \equiv b \pmod{m}", False),
    (r"\mathbf{W}\in\mathbb{R}^{m\times n},\ \operatorname{rank}(\mathbf{W})\ll\min(m,n)", True),
    (
        r"\log p(x)\ge \mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]-\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)",
        True,
    ),
    (r"\text{loss}=\sum_{k} \lVert \mathrm{sg}[z_e]-e_k \rVert_2^2", True),
)


def body_of(text: str) -> str:
    """A post's Markdown after its front matter (--- YAML --- or +++ TOML +++)."""
    for fence in ("---", "+++"):
        if text.startswith(fence + "\n"):
            end = text.find("\n" + fence + "\n", len(fence))
            if end >= 0:
                return text[end + len(fence) + 2 :]
    return text


def content_formulas() -> list[tuple[str, bool, str]]:
    """Every formula in content/: (TeX, display, the post's path)."""
    out = []
    for path in sorted(CONTENT.rglob("*.md")):
        body = body_of(path.read_text(encoding="utf-8"))
        rel = str(path.relative_to(CONTENT))
        out += [(tex.strip(), display, rel) for tex, display in formulas(_markdown(), body)]
    return out
