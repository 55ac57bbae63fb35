//! Validated few-shot task sets (MATH.md §0, §3): [`Task`] and [`TaskSet`] live in the low module
//! [`crate::task`], shared by the infinite tower (`mnk`) and the finite one (`maml`); re-exported
//! here so `mnk::Task`, `mnk::tasks::Task` keep working.

pub use crate::task::{Task, TaskSet};
