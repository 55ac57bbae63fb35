//! The array names the manifests, packs and `gbml mnk` use (`arrays::read`, `arrays::write`,
//! `arrays::parse_bytes`): aliases of [`super::npy`], which holds the one `.npy` parser (size
//! limit and header-length check included). This module has no code of its own, so nothing
//! here can diverge from the `.npy` reader.

pub use super::npy::{
    parse_npy_any_named as parse_bytes, read_npy_any as read, write_npy_any as write, MAX_BYTES,
};
