//! Reference model (filled in next).
