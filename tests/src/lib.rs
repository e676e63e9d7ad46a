//! Helpers shared by the cross-crate tests: the test-vector file and HTML-parser checks.
