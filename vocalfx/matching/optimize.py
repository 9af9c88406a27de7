"""The one optimisation loop of vocalfx: Adam on the chain's 130 raw values.

Both :func:`vocalfx.matching.match` (inference-time optimisation) and
:func:`vocalfx.matching.fit_pair` (fitting a dry/wet pair) call :func:`run_adam` with their own
objective. The loop owns what they share:

* **Schedule**: the learning rate follows a cosine from ``lr`` at the first step to
  ``lr * lr_final_ratio`` at the last (:func:`cosine_lr`).
* **Space**: Adam steps on the raw vector itself, or, given ``sqrt_cov`` (the symmetric square
  root of the prior's covariance, :func:`prior_sqrt_cov`), on ``z`` with
  ``raw = start + sqrt_cov @ z``, so that ``lr`` is in prior standard deviations along each
  principal direction.
* **Best-step tracking**: the parameters of the lowest score seen are returned. A step's score
  is its loss divided by :attr:`Evaluation.baseline` (1 unless the objective says otherwise:
  fitting on random chunks compares steps by their loss relative to the starting parameters'
  loss on the same chunks). Step 0 evaluates the starting parameters; step ``k`` the parameters
  after ``k`` updates. With ``rescore_final`` the last update, which no step scores, is scored
  once after the loop and labelled step ``steps``.
* **Non-finite guard**: a step whose loss or gradient is not finite is not applied. The variable
  goes back to the last values that gave a finite loss and gradient, Adam restarts from there
  with its moment estimates dropped (they led to the bad point) at half the learning rate, and
  the event is recorded. More than ``max_recoveries`` such steps in a row raise ``error``.
  Non-finite parameters are never returned.

The loop is deterministic: it draws no random numbers (an objective that does takes its own
``torch.Generator``) and changes no process-wide state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Type

import torch

from ..errors import VocalfxError

__all__ = ["Evaluation", "OptimResult", "run_adam", "cosine_lr", "prior_sqrt_cov", "timing_lines"]


class Evaluation(NamedTuple):
    """What an objective returns for one parameter vector.

    Attributes:
        loss: the scalar loss (differentiable with respect to the parameters).
        terms: further values to log per step (scalars; logged as floats, not differentiated).
        baseline: the step's score for best-step tracking is ``loss / baseline``.
    """

    loss: torch.Tensor
    terms: Dict[str, torch.Tensor]
    baseline: float = 1.0


@dataclass
class OptimResult:
    """What :func:`run_adam` did.

    Attributes:
        vector: the raw parameters of the best step, ``(130,)`` float32.
        best_step: that step (0: the starting parameters; ``steps``: the last update, scored
            after the loop).
        best: ``{"loss", <terms>}`` of the best step (the caller's ``initial`` when it is 0).
        history: one row per attempted step: ``{"step", "loss", <terms>, "lr"}`` (NaN values
            for a step that was undone).
        recoveries: ``{"step", "reason", "lr"}`` per undone step (``lr``: the halved rate).
        final_lr: the learning rate of the last step.
    """

    vector: torch.Tensor
    best_step: int
    best: Dict[str, float]
    history: List[Dict[str, float]] = field(default_factory=list)
    recoveries: List[Dict[str, object]] = field(default_factory=list)
    final_lr: float = 0.0


def cosine_lr(lr: float, final_ratio: float, step: int, steps: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr * final_ratio`` at step ``steps - 1``."""
    if steps <= 1:
        return lr
    c = 0.5 * (1.0 + math.cos(math.pi * step / (steps - 1)))
    return lr * (final_ratio + (1.0 - final_ratio) * c)


def prior_sqrt_cov(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root ``V diag(sqrt(w)) V^T`` of a covariance, float64.

    Raises:
        ValueError: the covariance is not positive definite.
    """
    w, V = torch.linalg.eigh(cov.double())
    if not bool(w.min() > 0):
        raise ValueError("the whitened space needs a positive definite prior covariance")
    return (V * w.sqrt()) @ V.T


def timing_lines(seconds: float, recoveries: List[Dict[str, object]], final_lr: Optional[float] = None) -> List[str]:
    """The last lines of a run's summary: its time and the steps the guard undid."""
    lines = [f"time {seconds:.1f} s"]
    if recoveries:
        last = "" if final_lr is None else f" (last: {final_lr:g})"
        lines.append(f"{len(recoveries)} non-finite step(s) undone, each halving the learning rate{last}")
    return lines


def _floats(terms: Dict[str, torch.Tensor]) -> Dict[str, float]:
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in terms.items()}


def run_adam(
    objective: Callable[[torch.Tensor, int], Evaluation],
    start: torch.Tensor,
    *,
    steps: int,
    lr: float,
    lr_final_ratio: float = 0.1,
    initial: Dict[str, float],
    initial_score: float,
    sqrt_cov: Optional[torch.Tensor] = None,
    rescore_final: bool = False,
    max_recoveries: int = 8,
    error: Type[VocalfxError] = VocalfxError,
    hint: str = "",
    callback: Optional[Callable[[int, torch.Tensor], None]] = None,
    progress: bool = True,
    desc: str = "optimise",
    best_label: str = "best",
) -> OptimResult:
    """Minimise ``objective`` with Adam from ``start`` (the behaviour is in the module docstring).

    Args:
        objective: ``objective(raw, step) -> Evaluation`` for a ``(130,)`` float32 raw vector.
        start: the starting raw vector ``(130,)``.
        steps: Adam steps (0: return ``start``).
        lr: initial learning rate; ``lr_final_ratio``: its final fraction (cosine decay).
        initial: ``{"loss", <terms>}`` of ``start``, evaluated by the caller (it may score more
            data than one step does).
        initial_score: the score of ``start`` that a step must beat to become the best.
        sqrt_cov: step in whitened coordinates (see the module docstring); ``None``: raw.
        rescore_final: score the last update after the loop.
        max_recoveries: consecutive undone steps tolerated before raising ``error``.
        error: the exception class raised when the guard gives up; ``hint`` ends its message.
        callback: ``callback(step, raw)`` after every applied update.
        progress, desc, best_label: the tqdm bar (stderr) and its labels.

    Returns:
        An :class:`OptimResult`.
    """
    from tqdm.auto import tqdm

    start = start.detach().to(torch.float32)
    S = None if sqrt_cov is None else sqrt_cov.to(torch.float32)
    to_raw = (lambda z: z) if S is None else (lambda z: start + S @ z)
    var = (start.clone() if S is None else torch.zeros_like(start)).requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    last_good = var.detach().clone()
    best_score, best_raw, best_step, best_vals = initial_score, start.clone(), 0, dict(initial)
    term_names = [k for k in initial if k != "loss"]
    history: List[Dict[str, float]] = []
    recoveries: List[Dict[str, object]] = []
    failures, lr_scale, cur_lr = 0, 1.0, float(lr)
    with tqdm(total=steps, disable=not progress, desc=desc, unit="step", leave=False) as bar:
        for step in range(steps):
            cur_lr = lr_scale * cosine_lr(lr, lr_final_ratio, step, steps)
            for group in opt.param_groups:
                group["lr"] = cur_lr
            opt.zero_grad(set_to_none=True)
            raw = to_raw(var)
            ev = objective(raw, step)
            reason = _failure(ev, var)
            if reason is not None:
                failures += 1
                lr_scale /= 2.0
                cur_lr /= 2.0
                recoveries.append({"step": step, "reason": reason, "lr": cur_lr})
                history.append(
                    {"step": step, "loss": math.nan, **{k: math.nan for k in term_names}, "lr": cur_lr * 2.0}
                )
                if failures > max_recoveries:
                    raise error(
                        f"step {step}: {reason} after {max_recoveries} consecutive recoveries "
                        f"(learning rate halved to {cur_lr:g}); cannot continue{hint}"
                    )
                with torch.no_grad():
                    var.copy_(last_good)
                opt = torch.optim.Adam([var], lr=cur_lr)
                bar.update(1)
                continue
            failures = 0
            vals = {"loss": float(ev.loss.detach()), **_floats(ev.terms)}
            score = vals["loss"] / ev.baseline
            last_good = var.detach().clone()
            if score < best_score:
                best_score, best_raw, best_step, best_vals = score, raw.detach().clone(), step, vals
            history.append({"step": step, **vals, "lr": cur_lr})
            opt.step()
            if callback is not None:
                with torch.no_grad():
                    callback(step, to_raw(var).detach().clone())
            bar.set_postfix({"loss": f"{vals['loss']:.4f}", best_label: f"{best_score:.4f}"}, refresh=False)
            bar.update(1)
    if rescore_final and steps > 0 and failures == 0:
        with torch.no_grad():
            raw = to_raw(var).detach()
            ev = objective(raw, steps)
            vals = {"loss": float(ev.loss), **_floats(ev.terms)}
        if all(math.isfinite(v) for v in vals.values()) and vals["loss"] / ev.baseline < best_score:
            best_raw, best_step, best_vals = raw.clone(), steps, vals
    if not torch.isfinite(best_raw).all():  # pragma: no cover - the guard keeps them finite
        raise error("the optimised parameters are not finite")
    return OptimResult(best_raw, best_step, best_vals, history=history, recoveries=recoveries, final_lr=cur_lr)


def _failure(ev: Evaluation, var: torch.Tensor) -> Optional[str]:
    """Why a step cannot be applied (a non-finite loss or gradient), or ``None``; back-propagates ``ev.loss``."""
    if not torch.isfinite(ev.loss):
        return "non-finite loss"
    ev.loss.backward()
    if var.grad is None or not torch.isfinite(var.grad).all():
        return "non-finite gradient"
    return None
