//! Service start-up.
