//! Bodies of the cargo-fuzz targets in `fuzz/` (placeholder, filled below).
