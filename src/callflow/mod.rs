//! The callflow document: model, validation, PATCH merge, the collection descriptor and the
//! routing index.

pub mod document;
pub mod errors;
pub mod merge;
pub mod model;
pub mod routing;
pub mod temporal;
pub mod validate;
