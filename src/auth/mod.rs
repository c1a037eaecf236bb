//! Credentials and tokens, independent of HTTP: the API (`api::auth`) and the CLI
//! (`account create`, first start) both use these.
//!
//! - [`secrets`]: API keys and user credential digests are stored only as salted hashes and
//!   compared in constant time.
//! - [`token`]: the JWT-shaped auth tokens (HS256) that Kazoo clients carry in `X-Auth-Token`.

pub mod secrets;
pub mod token;
