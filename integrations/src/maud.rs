//! maud adapter (to be written).
