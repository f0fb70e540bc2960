"""Scheduled DropBlock: the paper's linear ramp of the drop rate over training steps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._core import at_most, linear_ramp, validate_schedule
from .modules import _DropBlockNd

__all__ = ["LinearDropBlockSchedule"]


class LinearDropBlockSchedule:
    r"""Ramp every DropBlock module of ``model`` linearly from ``start`` to its ``p``.

    After ``step`` calls to :meth:`step`, each DropBlock module ``m`` drops at rate
    ``start + (m.p - start) * min(step / total_steps, 1)`` (the paper's scheduled
    DropBlock). The rate lives in each module's ``p_current`` buffer and is changed in
    place, so a ``torch.compile``-d model does not recompile.

    The step count is a buffer of ``model`` itself (``name``, an int64 scalar), so it is
    part of ``model.state_dict()`` and of any checkpoint of the model; loading a state dict
    into ``model`` restores the step and the rates in force. A state dict without that key
    (pretrained weights saved without a schedule) loads too, even with ``strict=True``,
    and leaves the step as it is; a model without a schedule loads a scheduled checkpoint
    with ``strict=False`` (or after deleting the key). The schedule adds no submodule, so
    ``nn.Sequential`` models keep their forward. :meth:`state_dict` and
    :meth:`load_state_dict` also save the schedule on its own.

    Args:
        model: the module whose DropBlock submodules are scheduled; a ``torch.compile``-d,
            ``DistributedDataParallel`` or ``DataParallel`` module schedules the module it
            wraps (whose state dict holds the step), however they are nested.
        total_steps: steps over which the rate ramps (a positive int).
        start: the rate at step 0, at most every module's ``p``.
        name: the name of the step-count buffer registered on ``model``.

    Examples::

        >>> from dropblock_torch import DropBlock2d
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), DropBlock2d(p=0.1, block_size=5))
        >>> schedule = LinearDropBlockSchedule(model, total_steps=100)
        >>> for _ in range(25):
        ...     schedule.step()
        >>> round(schedule.rates()[0], 6)
        0.025
        >>> int(model.state_dict()["dropblock_schedule_step"])
        25
    """

    def __init__(
        self, model: nn.Module, total_steps: int, start: float = 0.0, *, name: str = "dropblock_schedule_step"
    ) -> None:
        model = _wrapped_module(model)
        layers = [m for m in model.modules() if isinstance(m, _DropBlockNd)]
        if not layers:
            raise ValueError("LinearDropBlockSchedule: `model` holds no DropBlock module.")
        if hasattr(model, name):
            raise ValueError(
                f"LinearDropBlockSchedule: `model` already has an attribute {name!r} (the step count of a schedule "
                "built earlier on it, or on the model it was copied or unpickled from?); build one schedule per "
                "model, or pass another `name`."
            )
        self.layers = tuple(layers)
        self.total_steps, self.start = self._checked(total_steps, start)
        self._step = 0
        model.register_buffer(name, torch.zeros((), dtype=torch.int64, device=layers[0].p_current.device))
        self._model = model
        self._name = name
        model.register_load_state_dict_pre_hook(self._before_load)
        model.register_load_state_dict_post_hook(self._after_load)
        self._update()

    @property
    def steps(self) -> int:
        """Steps taken so far."""
        return self._step

    def rates(self) -> list[float]:
        """The rate in force of each scheduled module, in ``model.modules()`` order."""
        return [min(linear_ramp(self._step, self.total_steps, m.p, self.start), m.p) for m in self.layers]

    def step(self) -> None:
        """Advance one training step (no host synchronisation)."""
        self._step += 1
        self._counter().fill_(self._step)
        self._update()

    def state_dict(self) -> dict[str, Any]:
        """The schedule on its own: ``{"steps", "total_steps", "start"}``."""
        return {"steps": self._step, "total_steps": self.total_steps, "start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the schedule from :meth:`state_dict`: the step, and ``total_steps`` and
        ``start`` when the state holds them (as PyTorch's LR schedulers restore all of theirs),
        then set every module's rate in force. Nothing changes if a value is invalid."""
        steps = state.get("steps") if isinstance(state, dict) else None
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(
                f"Invalid value for `steps` in the schedule's state: expected an int >= 0, got {steps!r} "
                f"(from a state {{'steps': ..., 'total_steps': ..., 'start': ...}} as state_dict() returns)."
            )
        self.total_steps, self.start = self._checked(
            state.get("total_steps", self.total_steps), state.get("start", self.start)
        )
        self._step = steps
        self._counter().fill_(self._step)
        self._update()

    def _checked(self, total_steps: object, start: object) -> tuple[int, float]:
        """``total_steps`` and ``start`` validated for every scheduled module's ``p``."""
        steps, rate = 0, 0.0
        for layer in self.layers:  # never empty; a start just above a p in float32 becomes that p
            _, steps, rate = validate_schedule(layer.p, total_steps, start)
            start = rate = at_most(rate, layer.p, "start", f"at most every module's p ({layer.p})")
        return steps, rate

    def _counter(self) -> torch.Tensor:
        return self._model.get_buffer(self._name)

    def _update(self) -> None:
        for layer, rate in zip(self.layers, self.rates(), strict=True):
            layer.set_current_p(rate)

    def _before_load(self, module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
        # A checkpoint saved without a schedule has no step: keep this one's, as if it had.
        state_dict.setdefault(prefix + self._name, self._counter().detach().clone())

    def _after_load(self, module: nn.Module, incompatible_keys: Any) -> None:
        self._step = int(self._counter())  # one host read per checkpoint load
        self._update()

    def __repr__(self) -> str:
        return (
            f"LinearDropBlockSchedule(total_steps={self.total_steps}, start={self.start}, "
            f"layers={len(self.layers)}, steps={self._step})"
        )


_DATA_PARALLEL = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def _wrapped_module(model: nn.Module) -> nn.Module:
    """The model inside any ``torch.compile``, ``DistributedDataParallel`` or ``DataParallel`` wrappers.

    The step count belongs to the wrapped module, the one whose state dict a checkpoint
    saves (``ddp.module.state_dict()``); a compile wrapper also forwards attribute reads to
    it, so a buffer registered on the wrapper could not be read back.
    """
    inner = model.module if isinstance(model, _DATA_PARALLEL) else getattr(model, "_orig_mod", None)
    return _wrapped_module(inner) if isinstance(inner, nn.Module) else model
