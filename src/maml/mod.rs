//! MAML: inner loop, exact second-order meta-gradient, outer training (MATH.md §2, §4).
//! (Being built: issue 4.)
