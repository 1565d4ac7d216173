//! Black-box tests live in `tests/tests/api/`.
