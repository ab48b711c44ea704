"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (StepLR, CosineAnnealingLR, WarmupCosineLR).

Same argument order, defaults and update rules as torch.optim, so `optim.Adam(model.parameters(), lr=1e-3)`
ports line for line. Each step updates every parameter in place from `p.grad` (`p -= ...` under no_grad(), so
its version goes up and a graph saved before the step refuses a second backward), reusing the optimizer's
state arrays and one scratch array per parameter shape, and never writes to `p.grad`.
Parameters whose .grad is None are skipped (as in PyTorch).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from tinygrad_edu.autograd import enable_grad, no_grad, watchers
from tinygrad_edu.tensor import Tensor

__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR", "WarmupCosineLR"]


class Optimizer:
    """Base class: holds `param_groups` (dicts with "params" and the hyperparameters) and per-parameter `state`.

    params is an iterable of Tensors, or of dicts {"params": [...], "lr": ..., ...} whose missing
    hyperparameters take the constructor's values (PyTorch's parameter groups).
    """

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = defaults
        self.state: dict[Tensor, dict] = {}
        self.param_groups: list[dict] = []
        self._scratch: dict[tuple, np.ndarray] = {}
        groups = [params] if isinstance(params, Tensor) else list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        name = type(self).__name__
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but one of the params is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can only optimize leaf Tensors (parameters), not results of ops")
        seen = {id(q) for g in self.param_groups for q in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen & set(ids):
            raise ValueError(f"{name}: a parameter appears more than once in the parameter groups")
        group = {**self.defaults, **group, "params": params}
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict) -> None:
        if not group["lr"] >= 0:   # NOTE: written so that nan is refused too, as PyTorch
            raise ValueError(f"{type(self).__name__}: invalid learning rate {group['lr']} (must be ≥ 0)")
        if not group.get("weight_decay", 0) >= 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {group['weight_decay']} (must be ≥ 0)")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the .grad of every parameter (to None, or to zeros with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient. closure (optional) recomputes and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        watching = watchers.this_thread.watchers   # the profiler's row for the step
        for w in watching:
            w.region_begins(f"{type(self).__name__}.step")
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, self.state.setdefault(p, {}), group)
        for w in reversed(watching):
            w.region_ends(f"{type(self).__name__}.step")
        return loss

    def _update(self, p: Tensor, g: np.ndarray, state: dict, group: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _tmp(self, a: np.ndarray) -> np.ndarray:
        """A scratch array of a's shape, dtype and layout, shared by the parameters like a (content: junk).

        NOTE: p.grad always has p.data's memory layout (the backward walk makes it so), so an update's
        elementwise passes over p.data, p.grad and this array all run contiguously."""
        key = (a.shape, a.dtype.str, a.strides)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty_like(a)
        return buf

    # --- state, in PyTorch's structure: parameters are numbered by their order in the groups ---

    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """{"state": {i: {"step": n, "exp_avg": array, ...}}, "param_groups": [{..., "params": [i, ...]}]}."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyperparameters and state (copied, cast to each parameter's dtype) saved by state_dict.

        The saved hyperparameters go through the constructor's own checks (a learning rate of −1 is refused as
        in Adam(lr=-1)), and a step count must be a whole number ≥ 0; nothing changes unless all is well."""
        name = type(self).__name__
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"{name}.load_state_dict: the saved parameter groups have "
                             f"{[len(g['params']) for g in saved]} parameters, this optimizer "
                             f"{[len(g['params']) for g in self.param_groups]}")
        params = self._params()
        new_state = {}
        for i, entries in state_dict["state"].items():
            p = params[int(i)]
            s = {}
            for key, value in entries.items():
                value = np.asarray(value)
                if key == "step":
                    step = value.item() if value.ndim == 0 and value.dtype.kind in "iuf" else None
                    if step is None or not (step >= 0 and float(step).is_integer()):
                        raise ValueError(f"{name}.load_state_dict: the step count of parameter {i} must be a "
                                         f"whole number ≥ 0, got {value.tolist()!r}")
                    s[key] = int(step)
                elif value.ndim == 0:
                    s[key] = value.item()
                elif value.shape != p.shape:
                    raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {i} has shape "
                                     f"{value.shape}, the parameter {p.shape}")
                else:
                    s[key] = value.astype(p.dtype, copy=True)
            new_state[p] = s
        new_groups = []
        for group, g in zip(self.param_groups, saved):
            new = dict(group)
            for key, value in g.items():
                if key != "params":
                    new[key] = tuple(value) if isinstance(value, list) else value
            self._check(new)   # NOTE: the constructor's checks, before anything is changed
            new_groups.append(new)
        for group, new in zip(self.param_groups, new_groups):
            group.update(new)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in g.items() if k != "params"]
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (μ), dampening (τ), weight decay (λ) and Nesterov.

        g ← ∇L(p) + λ·p
        if μ ≠ 0:   b ← g at the first step, b ← μ·b + (1 − τ)·g after;   g ← g + μ·b (Nesterov) or g ← b
        p ← p − lr·g

    With the defaults this is the tutorial's update, W := W − α·dW.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
                 nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _check(self, group):
        super()._check(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} (must be ≥ 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, g, state, group):
        lr, mu, tau, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        if wd != 0:
            g = g + wd * p.data                                    # g ← g + λ·p
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)   # b ← g
            else:
                buf *= mu                                          # b ← μ·b + (1 − τ)·g
                buf += g if tau == 0 else (1 - tau) * g
            g = g + mu * buf if group["nesterov"] else buf
        tmp = self._tmp(p.data)
        np.multiply(g, lr, out=tmp)
        p -= tmp                                                   # p ← p − lr·g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with PyTorch's L2 weight decay and optional AMSGrad. At step t = 1, 2, ...:

        g ← ∇L(p) + λ·p
        m ← β₁·m + (1 − β₁)·g             v ← β₂·v + (1 − β₂)·g²          (m = v = 0 before step 1)
        m̂ = m/(1 − β₁ᵗ)                    v̂ = v/(1 − β₂ᵗ)                  (AMSGrad: v̂ from max over steps of v)
        p ← p − lr·m̂/(√v̂ + ε)
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check(self, group):
        super()._check(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: invalid betas {group['betas']} (each must be in [0, 1))")
        if not group["eps"] >= 0:
            raise ValueError(f"{type(self).__name__}: invalid eps {group['eps']} (must be ≥ 0)")

    def _update(self, p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] = t = state["step"] + 1
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd                                   # AdamW: p ← p − lr·λ·p
            else:
                g = g + wd * p.data                                # Adam: g ← g + λ·p
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], self._tmp(p.data)
        np.multiply(g, 1 - b1, out=tmp)
        m *= b1
        m += tmp                                                   # m ← β₁·m + (1 − β₁)·g
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v *= b2
        v += tmp                                                   # v ← β₂·v + (1 − β₂)·g²
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        # NOTE: lr·m̂/(√v̂ + ε) = (lr·c/(1 − β₁ᵗ))·m/(√v + ε·c) with c = √(1 − β₂ᵗ): one pass fewer than
        # dividing √v by c (Kingma & Ba's "ε̂" ordering; equal up to rounding).
        c = math.sqrt(1 - b2 ** t)
        np.sqrt(v, out=tmp)
        tmp += eps * c
        np.divide(m, tmp, out=tmp)
        tmp *= lr * c / (1 - b1 ** t)
        p -= tmp                                                   # p ← p − lr·m̂/(√v̂ + ε)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): first p ← p − lr·λ·p, then Adam's step
    without the λ·p term in g. weight_decay defaults to 0.01, as in PyTorch."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# --- learning-rate schedules ----------------------------------------------------------------------------------


class LRScheduler:
    """Sets each group's "lr" from its initial lr and the count of `step()` calls (last_epoch), as torch's.

    Call `scheduler.step()` after `optimizer.step()`, once per epoch or once per iteration; the count is
    whatever unit you step in. Construction performs step 0 (the lr stays the initial one).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param group {i} has no 'initial_lr'; resuming with "
                               "last_epoch ≥ 0 needs the optimizer state of the run being resumed")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self._last_lr = [self.lr_at(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        vars(self).update(state_dict)


class StepLR(LRScheduler):
    """lr_t = lr₀·γ^⌊t/step_size⌋: the lr is multiplied by γ every step_size steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be ≥ 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr_t = η_min + (lr₀ − η_min)·(1 + cos(π·t/T_max))/2: from lr₀ at t = 0 down to η_min at t = T_max.

    (Loshchilov & Hutter 2017, without restarts; computed in closed form, which PyTorch's recursive form
    equals up to rounding.)
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be ≥ 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class WarmupCosineLR(LRScheduler):
    """A linear warm-up, then a cosine decay, then a floor (the schedule nanoGPT trains with), t = step count:

        t < warmup_steps:                lr_t = lr₀·t/warmup_steps               (from 0 up to lr₀)
        warmup_steps ≤ t ≤ decay_steps:  lr_t = min_lr + (lr₀ − min_lr)·(1 + cos(π·r))/2,
                                         r = (t − warmup_steps)/(decay_steps − warmup_steps)   (lr₀ down to min_lr)
        t > decay_steps:                 lr_t = min_lr

    Step it once per update (after optimizer.step()); the first update then runs at lr 0, as the warm-up starts
    there. min_lr is one value for every parameter group, as CosineAnnealingLR's eta_min.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, decay_steps: int, min_lr: float = 0.0,
                 last_epoch: int = -1):
        for name, v in (("warmup_steps", warmup_steps), ("decay_steps", decay_steps)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"WarmupCosineLR: {name} must be an integer ≥ 0, got {v!r}")
        if decay_steps <= warmup_steps:
            raise ValueError(f"WarmupCosineLR: decay_steps ({decay_steps}) must be more than warmup_steps "
                             f"({warmup_steps}): the cosine runs between the two")
        if not min_lr >= 0:
            raise ValueError(f"WarmupCosineLR: min_lr must be ≥ 0, got {min_lr}")
        self.warmup_steps, self.decay_steps, self.min_lr = int(warmup_steps), int(decay_steps), min_lr
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        if t < self.warmup_steps:
            return base_lr * t / self.warmup_steps
        if t > self.decay_steps:
            return self.min_lr
        r = (t - self.warmup_steps) / (self.decay_steps - self.warmup_steps)
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * r)) / 2
