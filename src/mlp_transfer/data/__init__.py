"""Reference datasets: Stillinger-Weber generation, mlearn and generic extxyz import, validation."""
