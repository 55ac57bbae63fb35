//! Experiments that combine the MNK, finite MAML and statistics into one protocol (above
//! `mnk`, `maml` and `theory`, below `report`).
//!
//! * [`omniglot`]: the paper's Omniglot protocol at this machine's scale (MATH.md §10).
//! * [`stats`]: binomial (Wilson) intervals and the paired one-sided comparison the claims use.

pub mod omniglot;
pub mod omniglot_data;
pub mod stats;
