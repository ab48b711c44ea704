"""Derives the coefficients of ops.erf, the vectorised error function, and prints them (needs mpmath).

Two pieces (and a shorter set for float32 results, fitted to ~2e−10, well inside float32's rounding), each a
weighted least-squares fit in 40-digit arithmetic on Chebyshev nodes, reweighted (Loeb's
iteration: divide each residual by the last Q, so that the fit minimises the relative error of P/Q, not of
P − f·Q) until it settles; the float64 coefficients are then checked against mpmath's erf on a dense grid:

    |x| < 1:      erf(x) = x + x·g(x²),  g(t) = erf(√t)/√t − 1, a polynomial of degree 11 in t = x²
                  (g is small, 0.128 at 0 and −0.157 at 1, so x + x·g rounds to about one ulp)
    1 ≤ |x| < 6:  erf(|x|) = 1 − exp(−x²)·P(|x|)/Q(|x|),  P/Q ≈ erfc(a)·exp(a²), degrees 6 and 7
                  (erfc ≤ 0.16 there, so P/Q's relative error is shrunk that much in erf)
    |x| ≥ 6:      erf(|x|) = 1 in float64 (erfc(6) = 2.2e−17 is below half an ulp of 1)

Run: python scripts/derive_erf.py   (about ten seconds), and paste the tuples into tinygrad_edu/ops.py.
"""
import math

import mpmath as mp
import numpy as np

mp.mp.dps = 40


def fit(f, lo, hi, m: int, n: int, nodes: int = 400, rounds: int = 6):
    """P (degree m) and Q (degree n, Q(0) = 1), ascending, with P/Q ≈ f in relative error on [lo, hi]."""
    xs = [mp.mpf(lo) + (mp.mpf(hi) - lo) * (1 - mp.cos(mp.pi * (k + 0.5) / nodes)) / 2 for k in range(nodes)]
    fs = [f(x) for x in xs]
    weights = [1 / abs(y) for y in fs]
    for _ in range(rounds):
        A, b = mp.matrix(nodes, m + 1 + n), mp.matrix(nodes, 1)
        for i, (x, y, w) in enumerate(zip(xs, fs, weights)):   # w·(P(x) − y·(Q(x) − 1)) = w·y
            for j in range(m + 1):
                A[i, j] = w * x ** j
            for j in range(1, n + 1):
                A[i, m + j] = -w * y * x ** j
            b[i] = w * y
        c, _ = mp.qr_solve(A, b)
        P, Q = [c[j] for j in range(m + 1)], [mp.mpf(1)] + [c[m + j] for j in range(1, n + 1)]
        weights = [1 / abs(y * mp.polyval(Q[::-1], x)) for x, y in zip(xs, fs)]
    return [float(p) for p in P], [float(q) for q in Q]


def horner(coeffs, u):
    acc = np.full_like(u, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * u + c
    return acc


# (name, float32 results?, degree of g, degrees of P and Q, where erf becomes 1 in that dtype)
SETS = (("", 11, 6, 7, 6.0), ("_F32", 7, 3, 4, 4.5))


def main():
    xs = np.concatenate([np.linspace(0, 6, 30001)[1:], np.geomspace(1e-12, 6, 10000)])
    true = np.array([float(mp.erf(mp.mpf(float(x)))) for x in xs])
    print(f"# math.erf: {max(abs(math.erf(x) - t) / np.spacing(t) for x, t in zip(xs, true)):.0f} ulp at most")
    for suffix, deg_g, deg_p, deg_q, one in SETS:
        g, _ = fit(lambda t: mp.erf(mp.sqrt(t)) / mp.sqrt(t) - 1 if t else 2 / mp.sqrt(mp.pi) - 1, 0, 1, deg_g, 0)
        P, Q = fit(lambda a: mp.erfc(a) * mp.exp(a * a), 1, one, deg_p, deg_q)
        small, m = xs < 1, np.clip(xs, 1, one)
        ours = np.where(small, xs + xs * horner(g, xs * xs), 1 - np.exp(-m * m) * horner(P, m) / horner(Q, m))
        rel = np.abs(ours - true) / true
        print(f"# {suffix or 'float64'}: largest relative error on {xs.size} points {rel[small].max():.1e} below 1, "
              f"{rel[~small].max():.1e} above (ulp of float64: {np.spacing(1.0):.1e}, float32: "
              f"{np.spacing(np.float32(1)):.1e})")
        for name, coeffs in (("_ERF_G", g), ("_ERFCX_P", P), ("_ERFCX_Q", Q)):
            print(f"{name}{suffix} = ({', '.join(repr(c) for c in coeffs)})")


if __name__ == "__main__":
    main()
