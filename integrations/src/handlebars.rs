//! handlebars adapter (to be written).
