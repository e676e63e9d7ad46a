//! axum (and any tower HTTP stack): continue incoming traces and hand pages their tags.
//!
//! (Module documentation with a complete wiring example is written with the layer.)

mod cache;
mod inject;
mod layer;

pub use cache::is_publicly_cacheable;
