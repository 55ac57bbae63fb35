//! Reusable theorem checkers returning measured-vs-predicted reports. (Being built: issue 5.)
