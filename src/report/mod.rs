//! Tables and SVG plots. (Being built: issue 5.)
