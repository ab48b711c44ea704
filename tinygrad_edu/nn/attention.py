"""nn.CausalSelfAttention: multi-head self attention in which position t sees only positions ≤ t (a GPT's layer).

    q, k, v = split(x·W_qkvᵀ + b_qkv)            one fused projection, n_embd → 3·n_embd
    head h:  y_h = softmax(q_h·k_hᵀ/√d + mask)·v_h   (F.scaled_dot_product_attention, is_causal)
    y = concat_h(y_h)·W_projᵀ + b_proj            then dropout on the residual branch

Attention is matmuls, a mask and the tutorial's softmax; the backward walk goes through them as through any graph.
A key/value `cache` (a dict the caller keeps) lets generation feed one new token at a time: its keys and values are
appended to the cached ones, and its query attends to all of them.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.nn import functional, specs
from tinygrad_edu.nn.layers import Layer, Linear
from tinygrad_edu.tensor import Tensor, as_generator, cat


@specs.layer
class CausalSelfAttention(Layer):
    """Causal multi-head self attention over (N, T, n_embd) inputs, n_head heads of n_embd/n_head each.

    Parameters: qkv (Linear n_embd → 3·n_embd: the queries', keys' and values' projections side by side, in that
    order) and proj (Linear n_embd → n_embd), with biases when bias=True. dropout applies to the attention weights
    and to the output while training (nanoGPT's attn_dropout and resid_dropout). n_embd must be a multiple of
    n_head.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, *, dtype=None,
                 seed=None):
        a = self.arguments(n_embd, n_head, dropout, bias, dtype=dtype)
        self.n_embd, self.n_head, self.dropout = a["n_embd"], a["n_head"], a["dropout"]
        rng = as_generator(seed)
        self.qkv = Linear(self.n_embd, 3 * self.n_embd, a["bias"], dtype=a["dtype"], seed=rng)
        self.proj = Linear(self.n_embd, self.n_embd, a["bias"], dtype=a["dtype"], seed=rng)
        self.rng = rng

    @classmethod
    def arguments(cls, n_embd, n_head, dropout=0.0, bias=True, *, dtype=None) -> dict:
        n_embd = specs.positive_int("CausalSelfAttention", "n_embd", n_embd)
        n_head = specs.positive_int("CausalSelfAttention", "n_head", n_head)
        if n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd {n_embd} is not divisible by n_head {n_head}: each head "
                             f"takes n_embd/n_head of the embedding (choose e.g. n_head "
                             f"{max(d for d in range(1, n_head + 1) if n_embd % d == 0)})")
        return {"n_embd": n_embd, "n_head": n_head,
                "dropout": specs.probability("CausalSelfAttention", "dropout", dropout),
                "bias": specs.flag("CausalSelfAttention", "bias", bias),
                "dtype": specs.model_dtype("CausalSelfAttention", dtype)}

    @classmethod
    def state_shapes(cls, n_embd, n_head, dropout, bias, dtype) -> dict:
        shapes = {}
        for name, out in (("qkv", 3 * n_embd), ("proj", n_embd)):
            shapes.update({f"{name}.{k}": v for k, v in Linear.state_shapes(n_embd, out, bias, dtype, "torch").items()})
        return shapes

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        """(N, T, n_embd) → (N, T, n_embd). With cache (a dict: empty, or the "k" and "v" of the positions before
        these T), the queries attend to the cached positions too, and the cache grows by these T."""
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ShapeError(f"CausalSelfAttention: input must be (N, T, {self.n_embd}), got {tuple(x.shape)}")
        N, T, C = x.shape
        H = self.n_head
        qkv = self.qkv(x).reshape(N, T, 3, H, C // H).permute(2, 0, 3, 1, 4)   # 3 × N × H × T × d
        q, k, v = qkv[0], qkv[1], qkv[2]
        mask, causal = None, True
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = cat([cache["k"], k], dim=2), cat([cache["v"], v], dim=2)
                # query i is position past + i: it sees keys 0..past + i (a top-left causal mask would not)
                mask = np.arange(past + T)[None, :] <= past + np.arange(T)[:, None]
                causal = False
            cache["k"], cache["v"] = k.detach(), v.detach()
        p = self.dropout if self.training else 0.0
        y = functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal,
                                                    seed=self.rng)
        y = self.proj(y.transpose(1, 2).reshape(N, T, C))
        return functional.dropout(y, p, self.training, seed=self.rng) if p else y

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, dropout={self.dropout}, bias={self.qkv.bias is not None}"

    def _config(self) -> dict:
        return {"n_embd": self.n_embd, "n_head": self.n_head, "dropout": self.dropout,
                "bias": self.qkv.bias is not None, "dtype": str(self.qkv.weight.dtype)}
