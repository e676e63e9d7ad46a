//! askama adapter (to be written).
