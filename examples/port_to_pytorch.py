"""The same MLP, CNN, normalised nets and GPT in tinygrad_edu and in PyTorch, side by side; checks they agree.

    python examples/port_to_pytorch.py

Porting is renaming: `tinygrad_edu.nn` ↔ `torch.nn`, `tinygrad_edu.optim` ↔ `torch.optim`, numpy arrays ↔
tensors. From the same weights and the same batch, the two give the same loss, the same gradients and the
same parameters after an Adam step (to float64 rounding), BatchNorm the same running statistics. Uses a batch of
the MNIST bundled with the package (random pixels if MNIST is nowhere to be found). Without torch it prints how to
install it and exits 0.

The GPT (tinygrad_edu.models.GPT) is written here once more in torch, its parameters named as ours, so one
state_dict loads into both: the loss on a batch of Truyện Kiều's characters, every gradient, and one AdamW step
with nanoGPT's groups (weight decay on the matrices only) agree to float64 rounding.
"""
import argparse
import sys

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, optim, text
from tinygrad_edu.models.gpt import GPT

# The models, written once for both libraries: porting is renaming, so the same code builds either, given its `nn`
# module and its float64 dtype.


def mlp(nn, dtype):
    return nn.Sequential(nn.Linear(784, 256, dtype=dtype), nn.ReLU(), nn.Linear(256, 10, dtype=dtype))


def cnn(nn, dtype):
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 10, dtype=dtype))


def batchnorm_mlp(nn, dtype):
    return nn.Sequential(
        nn.Linear(784, 64, bias=False, dtype=dtype), nn.BatchNorm1d(64, dtype=dtype), nn.ReLU(),
        nn.Linear(64, 10, dtype=dtype))


def embedding_net(nn, dtype):
    return nn.Sequential(
        nn.Embedding(16, 4, dtype=dtype), nn.Flatten(),
        nn.Linear(784 * 4, 64, dtype=dtype), nn.LayerNorm(64, dtype=dtype), nn.ReLU(),
        nn.Linear(64, 10, dtype=dtype))


# One Adam step in each library. The two functions are the same code line for line: only the imports and the
# numpy <-> tensor edges differ.


def tinygrad_edu_step(build, inputs, y, state):
    model = build(nn, np.float64)
    model.load_state_dict(state)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    logits = model(inputs)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    optimizer.step()
    return loss.item(), grads, model.state_dict()


def pytorch_step(build, inputs, y, state):
    import torch
    from torch import nn, optim
    from torch.nn import functional as F

    model = build(nn, torch.float64)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    logits = model(torch.from_numpy(inputs))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    optimizer.zero_grad()
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    optimizer.step()
    return loss.item(), grads, {k: v.numpy() for k, v in model.state_dict().items()}


# The GPT in torch, as models/gpt.py builds it (pre-LayerNorm blocks, fused q/k/v, exact GELU, the head tied to the
# token embedding), with the same parameter names.


def torch_gpt(torch, vocab_size, n_layer, n_head, n_embd, block_size, bias=False):
    tnn, TF = torch.nn, torch.nn.functional

    class CausalSelfAttention(tnn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = tnn.Linear(n_embd, 3 * n_embd, bias=bias), tnn.Linear(n_embd, n_embd, bias=bias)

        def forward(self, x):
            N, T, C = x.shape
            q, k, v = self.qkv(x).reshape(N, T, 3, n_head, C // n_head).permute(2, 0, 3, 1, 4)
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(N, T, C))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = tnn.LayerNorm(n_embd, bias=bias), CausalSelfAttention()
            self.ln_2 = tnn.LayerNorm(n_embd, bias=bias)
            self.mlp = tnn.Sequential(tnn.Linear(n_embd, 4 * n_embd, bias=bias), tnn.GELU(),
                                      tnn.Linear(4 * n_embd, n_embd, bias=bias), tnn.Dropout(0.0))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(vocab_size, n_embd), tnn.Embedding(block_size, n_embd)
            self.blocks = tnn.ModuleList(Block() for _ in range(n_layer))
            self.ln_f = tnn.LayerNorm(n_embd, bias=bias)
            self.head = tnn.Linear(n_embd, vocab_size, bias=False)
            self.head.weight = self.wte.weight   # tied: one Parameter

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return TorchGPT()


def adamw(optim_module, model, lr=1e-3):
    """AdamW with nanoGPT's groups: weight decay 0.1 on the matrices, none on the gains and biases."""
    params = list(model.parameters())
    return optim_module.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                               {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                              lr=lr, betas=(0.9, 0.99))


def compare_gpt(n_layer=2, n_head=4, n_embd=32, block_size=16, batch_size=4) -> float:
    """Ours and torch's GPT from the same weights on the same windows of Truyện Kiều; the worst relative difference."""
    import torch

    data = text.load_text("kieu")
    tokenizer = text.CharTokenizer.from_data(data)
    ids = tokenizer.encode(data.train)
    starts = np.random.default_rng(0).integers(0, len(ids) - block_size - 1, batch_size)
    x = np.stack([ids[s:s + block_size] for s in starts]).astype(np.int64)
    y = np.stack([ids[s + 1:s + block_size + 1] for s in starts]).astype(np.int64)
    ours = GPT(tokenizer, n_layer, n_head, n_embd, block_size, dtype=np.float64, seed=0)
    state = ours.state_dict()
    theirs = torch_gpt(torch, tokenizer.vocab_size, n_layer, n_head, n_embd, block_size).double()
    missing, unexpected = theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()},
                                                 strict=False)
    assert missing == ["head.weight"] and not unexpected, (missing, unexpected)   # the tied head: wte's weight

    V = tokenizer.vocab_size
    opt = adamw(optim, ours)
    loss = F.cross_entropy(ours(x).reshape(-1, V), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad.copy() for n, p in ours.named_parameters()}
    opt.step()
    t_opt = adamw(torch.optim, theirs)
    t_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)).reshape(-1, V),
                                               torch.from_numpy(y).reshape(-1))
    t_opt.zero_grad()
    t_loss.backward()
    t_params = dict(theirs.named_parameters())
    t_grads = {n: p.grad.numpy().copy() for n, p in t_params.items()}
    t_opt.step()
    rows = [("loss", np.array(loss.item()), np.array(t_loss.item()))]
    rows += [(f"∂L/∂{n}", grads[n], t_grads[n]) for n in grads]
    rows += [(f"{n} after AdamW", p.data, t_params[n].detach().numpy()) for n, p in ours.named_parameters()]
    return report(f"GPT {n_layer} layers, {n_head} heads, embedding {n_embd}, block {block_size}, tied head: "
                  f"{batch_size} windows of Truyện Kiều", rows)


def levels(X):
    """Each pixel's grey level in 16 steps (0..15): the indices the Embedding looks up."""
    return np.minimum((X * 16).astype(np.int64), 15)


def batch(m=128):
    try:
        (X, y), _ = datasets.load_mnist(download=False, progress=False)
        print(f"a batch of {m} real MNIST training images")
    except datasets.DatasetError:
        rng = np.random.default_rng(0)
        X, y = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8), rng.integers(0, 10, m)
        print(f"a batch of {m} random images (set {datasets.ENV_VAR} to a folder with MNIST for real digits)")
    return datasets.to_float(X[:m], np.float64), y[:m].astype(np.int64)


def compare(title, build, inputs, y, start) -> float:
    """Runs both steps from the same weights and batch, prints each quantity's difference; the worst relative one."""
    loss_a, grads_a, after_a = tinygrad_edu_step(build, inputs, y, start)
    loss_b, grads_b, after_b = pytorch_step(build, inputs, y, start)
    rows = [("loss", np.array(loss_a), np.array(loss_b))]
    rows += [(f"∂L/∂{n}", grads_a[n], grads_b[n]) for n in grads_a]
    rows += [(f"{n} after Adam" if n in grads_a else f"{n} after the step", after_a[n], after_b[n]) for n in after_a]
    return report(title, rows)


def report(title, rows) -> float:
    """Prints each quantity's difference (ours − torch); returns the worst relative one."""
    print(f"\n{title}\n{'quantity':38s} {'shape':>14s} {'max |ours − torch|':>19s} {'relative':>10s}")
    worst = 0.0
    for name, a, b in rows:
        diff = float(np.max(np.abs(a - b)))
        rel = diff / max(float(np.max(np.abs(b))), 1e-300)
        worst = max(worst, rel)
        print(f"{name:38s} {str(a.shape):>14s} {diff:19.3e} {rel:10.1e}")
    return worst


def main() -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed, so there is nothing to compare against; read the two versions side by side\n"
              "in this file, or install it (pip install torch) and run this script again.")
        return 0
    X, y = batch()
    rng = np.random.default_rng(3)
    start = {   # the same weights for both: drawn by tinygrad_edu's own init
        "mlp": nn.Sequential(nn.Linear(784, 256, dtype=np.float64, seed=0), nn.ReLU(),
                             nn.Linear(256, 10, dtype=np.float64, seed=0)).state_dict(),
        "cnn": nn.Sequential(nn.Conv2d(1, 8, 5, dtype=np.float64, seed=0), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 5, padding=1, dtype=np.float64, seed=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(16 * 5 * 5, 10, dtype=np.float64, seed=2)).state_dict(),
        "batchnorm": nn.Sequential(nn.Linear(784, 64, bias=False, dtype=np.float64, seed=rng),
                                   nn.BatchNorm1d(64, dtype=np.float64), nn.ReLU(),
                                   nn.Linear(64, 10, dtype=np.float64, seed=rng)).state_dict(),
        "embedding": nn.Sequential(nn.Embedding(16, 4, dtype=np.float64, seed=rng), nn.Flatten(),
                                   nn.Linear(784 * 4, 64, dtype=np.float64, seed=rng),
                                   nn.LayerNorm(64, dtype=np.float64), nn.ReLU(),
                                   nn.Linear(64, 10, dtype=np.float64, seed=rng)).state_dict()}
    worst = max(compare("MLP 784-256-10", mlp, X, y, start["mlp"]),
                compare("CNN conv5(8)-pool-conv5(16, padding 1)-pool-linear(400, 10)", cnn,
                        X.reshape(-1, 1, 28, 28), y, start["cnn"]),
                compare("MLP linear(784, 64, no bias)-batchnorm-relu-linear(64, 10)", batchnorm_mlp, X, y,
                        start["batchnorm"]),
                compare("grey levels: embedding(16, 4)-flatten-linear(3136, 64)-layernorm-relu-linear(64, 10)",
                        embedding_net, levels(X), y, start["embedding"]),
                compare_gpt())
    same = worst <= 1e-10
    print("\nsame loss, gradients and step (float64)" if same else "\nMISMATCH: the two versions differ")
    return 0 if same else 1


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()   # no options: refuse any
    sys.exit(main())
