//! Logging (tracing) and Prometheus metrics.
