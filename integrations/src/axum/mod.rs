//! axum integration (to be written).
