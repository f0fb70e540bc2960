"""LinearDropBlockSchedule: the ramp, its checkpoint, and its validation."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from dropblock_torch import DropBlock1d, DropBlock2d, LinearDropBlockSchedule


def model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3), DropBlock2d(p=0.1, block_size=5))


def test_linear_ramp_per_module_then_constant() -> None:
    m = model()
    schedule = LinearDropBlockSchedule(m, total_steps=10, start=0.02)
    assert schedule.rates() == pytest.approx([0.02, 0.02])
    for _ in range(5):
        schedule.step()
    assert schedule.rates() == pytest.approx([0.11, 0.06])
    assert float(m[1].p_current) == pytest.approx(0.11)
    for _ in range(20):
        schedule.step()
    assert [float(m[1].p_current), float(m[2].p_current)] == pytest.approx([0.2, 0.1])


def test_state_is_in_the_model_checkpoint() -> None:
    m = model()
    schedule = LinearDropBlockSchedule(m, total_steps=8)
    for _ in range(3):
        schedule.step()
    buffer = io.BytesIO()
    torch.save(m.state_dict(), buffer)
    buffer.seek(0)
    fresh = model()
    fresh_schedule = LinearDropBlockSchedule(fresh, total_steps=8)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert float(fresh[1].p_current) == pytest.approx(0.2 * 3 / 8)
    fresh_schedule.step()
    assert float(fresh[2].p_current) == pytest.approx(0.1 * 4 / 8)
    assert fresh_schedule.state_dict()["steps"] == 4


def test_validation() -> None:
    with pytest.raises(ValueError, match="no DropBlock"):
        LinearDropBlockSchedule(nn.Linear(2, 2), total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        LinearDropBlockSchedule(model(), total_steps=0)
    with pytest.raises(ValueError, match="start"):
        LinearDropBlockSchedule(model(), total_steps=10, start=0.15)


@pytest.mark.parametrize("state", [{"steps": -3}, {"steps": 2.5}, {"steps": True}, {}])
def test_a_bad_saved_state_is_refused_and_changes_nothing(state: dict) -> None:
    schedule = LinearDropBlockSchedule(model(), total_steps=10)
    schedule.step()
    with pytest.raises(ValueError, match="`steps`"):
        schedule.load_state_dict(state)
    assert schedule.steps == 1


def test_scheduled_rate_is_used_by_the_layer() -> None:
    m = nn.Sequential(DropBlock1d(p=0.5, block_size=3))
    LinearDropBlockSchedule(m, total_steps=10)
    x = torch.ones(4, 8, 64)
    assert torch.equal(m(x), x), "step 0 of a ramp from 0 is the identity"


def test_a_compiled_model_is_scheduled_through_the_module_it_wraps() -> None:
    m = model()
    compiled = torch.compile(m, backend="eager")
    schedule = LinearDropBlockSchedule(compiled, total_steps=4)
    schedule.step()
    assert float(m[1].p_current) == pytest.approx(0.05)
    assert int(m.state_dict()["dropblock_schedule_step"]) == 1
    assert int(compiled.state_dict()["_orig_mod.dropblock_schedule_step"]) == 1


def test_a_data_parallel_model_is_scheduled_through_the_module_it_wraps() -> None:
    m = model()
    wrapped = torch.compile(nn.DataParallel(m), backend="eager")  # torch.compile(DDP(m)) unwraps the same way
    schedule = LinearDropBlockSchedule(wrapped, total_steps=4)
    schedule.step()
    assert int(m.state_dict()["dropblock_schedule_step"]) == 1  # in the checkpoint of ddp.module
    resumed = model()
    resumed_schedule = LinearDropBlockSchedule(nn.DataParallel(resumed), total_steps=4)
    resumed.load_state_dict(m.state_dict())
    assert resumed_schedule.steps == 1
    assert float(resumed[1].p_current) == pytest.approx(0.05)


def test_a_checkpoint_without_the_step_loads_strictly_and_keeps_the_step() -> None:
    pretrained = model().state_dict()  # saved without a schedule
    m = model()
    schedule = LinearDropBlockSchedule(m, total_steps=10)
    schedule.step()
    m.load_state_dict(pretrained)  # strict: the missing step is not an error
    assert schedule.steps == 1
    assert float(m[1].p_current) == pytest.approx(0.02)
    assert "dropblock_schedule_step" not in pretrained
    # The other way round, a model without a schedule loads a scheduled checkpoint non-strictly.
    assert model().load_state_dict(m.state_dict(), strict=False).unexpected_keys == ["dropblock_schedule_step"]


def test_a_float32_start_equal_to_p_is_p() -> None:
    m = nn.Sequential(DropBlock2d(p=0.1, block_size=3))
    schedule = LinearDropBlockSchedule(m, total_steps=4, start=float(torch.tensor(0.1)))  # 0.10000000149...
    assert schedule.start == 0.1
    assert schedule.rates() == [0.1]


def test_a_second_schedule_on_one_model_is_refused() -> None:
    m = model()
    LinearDropBlockSchedule(m, total_steps=10)
    with pytest.raises(ValueError, match="already has an attribute 'dropblock_schedule_step'"):
        LinearDropBlockSchedule(m, total_steps=20)
    LinearDropBlockSchedule(m, total_steps=20, name="second_step")  # under another name


def test_load_state_dict_restores_the_whole_schedule() -> None:
    saved = LinearDropBlockSchedule(model(), total_steps=100, start=0.05)
    saved.step()
    schedule = LinearDropBlockSchedule(model(), total_steps=4)
    schedule.load_state_dict(saved.state_dict())
    assert (schedule.steps, schedule.total_steps, schedule.start) == (1, 100, 0.05)
    assert schedule.rates() == pytest.approx([0.05 + 0.15 / 100, 0.05 + 0.05 / 100])
    with pytest.raises(ValueError, match="start"):
        schedule.load_state_dict({"steps": 2, "total_steps": 10, "start": 0.15})  # above the second p
    assert (schedule.steps, schedule.total_steps, schedule.start) == (1, 100, 0.05)
