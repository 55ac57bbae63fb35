//! Exchange formats (`.npy`, JSON manifests) and comparison against other implementations.
//! (Being built: issues 2, 6.)
