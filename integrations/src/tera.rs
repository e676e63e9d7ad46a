//! tera adapter (to be written).
