//! Rates and bounds predicted by the theory (MATH.md §4, §7). (Being built: issue 5.)
