"""SLURM time strings of the submitit launcher's controller job."""

from __future__ import annotations

import pytest

from mlp_transfer.launch import parse_time


@pytest.mark.parametrize("value, minutes", [
    ("90", 90), ("05:30", 6), ("02:00:00", 120), ("1-05", 29 * 60), ("0-05", 5 * 60), ("0-05:30", 5 * 60 + 30),
    ("1-00:00:00", 24 * 60), ("0-00:00:30", 1), ("0", 1)])
def test_parse_time_reads_every_slurm_format(value, minutes):
    """A day part, even 0, makes the next field hours (SLURM's D-HH, D-HH:MM, D-HH:MM:SS)."""
    assert parse_time(value) == minutes


@pytest.mark.parametrize("value", ["", "1:2:3:4", "2h", "-5"])
def test_parse_time_refuses_other_strings(value):
    with pytest.raises(ValueError, match="invalid SLURM time"):
        parse_time(value)
