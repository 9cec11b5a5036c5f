//! Pure ML algorithms.
