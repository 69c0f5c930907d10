"""Known-answer tests: a hand-worked 3x3 accuracy matrix pins every definition."""

import numpy as np
import pytest

from circadian_core.metrics import (
    accuracy_matrix_summary,
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
)

# R[i][j]: accuracy on task j after training task i.
R = [
    [0.90, 0.10, 0.20],
    [0.95, 0.80, 0.30],
    [0.60, 0.50, 0.95],
]
B = [0.10, 0.10, 0.10]  # random-init accuracy per task


def test_acc_is_mean_of_last_row():
    # (0.60 + 0.50 + 0.95) / 3
    assert average_accuracy(R) == pytest.approx(2.05 / 3)


def test_bwt_compares_final_with_just_trained():
    # ((0.60 - 0.90) + (0.50 - 0.80)) / 2
    assert backward_transfer(R) == pytest.approx(-0.30)


def test_fwt_uses_row_before_each_task():
    # ((R[0][1] - b1) + (R[1][2] - b2)) / 2 = (0.0 + 0.2) / 2
    assert forward_transfer(R, B) == pytest.approx(0.10)


def test_forgetting_takes_max_over_earlier_rounds():
    # task 0: max(0.90, 0.95) - 0.60 = 0.35 ; task 1: max(0.10, 0.80) - 0.50 = 0.30
    assert forgetting(R) == pytest.approx(0.325)
    # differs from -BWT exactly because task 0 improved after its own round
    assert forgetting(R) != pytest.approx(-backward_transfer(R))


def test_no_forgetting_when_nothing_drops():
    perfect = np.triu(np.ones((3, 3))) * 0 + np.tril(np.ones((3, 3)))
    assert forgetting(perfect) == 0.0
    assert backward_transfer(perfect) == 0.0


def test_single_task_is_defined():
    assert average_accuracy([[0.7]]) == pytest.approx(0.7)
    assert backward_transfer([[0.7]]) == 0.0
    assert forgetting([[0.7]]) == 0.0


def test_summary_and_shape_errors():
    s = accuracy_matrix_summary(R, B)
    assert set(s) == {"acc", "bwt", "forgetting", "fwt"}
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[1.0, 0.5]])
    with pytest.raises(ValueError, match="one accuracy per task"):
        forward_transfer(R, [0.1])
