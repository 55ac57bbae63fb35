//! The inner-loop operator T, the Meta Neural Kernel Φ and the kernel-regression meta-learner
//! (MATH.md §2, §3, §5). (Being built: issue 3.)
