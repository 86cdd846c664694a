//! Small helpers shared by the pieces.
