//! The callflow document: model, validation and the routing index.

pub mod errors;
pub mod model;
pub mod routing;
pub mod temporal;
