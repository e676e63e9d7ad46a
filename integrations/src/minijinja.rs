//! minijinja adapter (to be written).
