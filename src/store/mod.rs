//! The SQLite record. (Being written.)
