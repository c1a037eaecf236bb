//! The Kazoo-compatible REST API (axum).
