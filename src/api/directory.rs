//! `POST /directory`: FreeSWITCH's user directory, for mod_xml_curl's `directory` binding, so
//! softphones register with (and are called as) devices created through the API.
//!
//! mod_xml_curl posts a form (`section=directory&tag_name=domain&key_name=name&key_value=<domain>
//! &user=<user>&domain=<domain>&action=sip_auth|user_call|message-count|...`, plus the
//! `sip_auth_*` fields of a registration). The device is found by its SIP credentials
//! (`sip.username` in the realm: the device's `sip.realm`, else its account's realm; see
//! [`crate::documents::devices::sip_owner`]). The reply is FreeSWITCH's directory XML with the
//! user's `a1-hash` = md5(`user:domain:password`) (never the password), and the variables the
//! call engine reads (`account_id`, `device_id`, `owner_id`, `user_context`, caller ids). Anything
//! else (unknown user or domain, a disabled device, a device without a password, other
//! sections) gets mod_xml_curl's "not found" document, so FreeSWITCH falls back to its own
//! files and refuses the registration. Both are `text/xml`, not Kazoo envelopes.
//!
//! Protection: off (404) until `directory_username` and `directory_password` are configured;
//! peers outside `directory_allowed_peers` (default loopback) get 403; a wrong or missing HTTP
//! basic login (mod_xml_curl's `gateway-credentials`) gets 401.

use super::AppState;
use super::envelope::{ApiError, Passthrough, parse_query, read_body};
use super::routes::{RouteSpec, Verb};
use crate::config::Config;
use crate::documents::devices;
use crate::engine::IpNet;
use crate::store::field_at;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// Largest form mod_xml_curl posts that we read (FreeSWITCH sends a few KiB of channel data).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Settings of the directory endpoint. Its `Debug` form hides the password.
#[derive(Clone)]
pub struct DirectorySettings {
    /// Basic-auth user (`None`: endpoint off).
    pub username: Option<String>,
    /// Basic-auth password (`None`: endpoint off).
    pub password: Option<String>,
    /// Peers allowed to ask.
    pub allowed_peers: Vec<IpNet>,
    /// The `user_context` variable (dialplan context of the device's calls).
    pub user_context: String,
}

impl std::fmt::Debug for DirectorySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySettings")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("allowed_peers", &self.allowed_peers)
            .field("user_context", &self.user_context)
            .finish()
    }
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            username: None,
            password: None,
            allowed_peers: vec![IpNet::loopback_v4(), IpNet::loopback_v6()],
            user_context: "default".into(),
        }
    }
}

impl From<&Config> for DirectorySettings {
    fn from(config: &Config) -> Self {
        DirectorySettings {
            username: config.directory_username.clone(),
            password: config.directory_password.clone(),
            allowed_peers: config.directory_allowed_peers.clone(),
            user_context: config.directory_user_context.clone(),
        }
    }
}

/// Escapes text for an XML attribute value.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// mod_xml_curl's "not found" reply: FreeSWITCH then uses its own files (and, for a
/// registration, refuses it).
pub const NOT_FOUND_XML: &str = "<document type=\"freeswitch/xml\">\n  <section name=\"result\">\n    <result status=\"not found\"/>\n  </section>\n</document>\n";

/// The dial string FreeSWITCH uses for `user/<id>@<domain>` (the stock directory's): ring every
/// registration of the user on any sofia profile, with presence for BLF.
pub const DIAL_STRING: &str = "{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}";

/// `md5("user:realm:password")` as lowercase hex: the SIP digest HA1 FreeSWITCH takes as
/// `a1-hash` instead of a password.
pub fn a1_hash(user: &str, realm: &str, password: &str) -> String {
    hex::encode(Md5::digest(format!("{user}:{realm}:{password}").as_bytes()))
}

/// The directory document for one user of one domain.
pub fn user_xml(domain: &str, user: &str, a1: &str, variables: &[(String, String)]) -> String {
    let mut vars = String::new();
    for (name, value) in variables {
        vars.push_str(&format!(
            "                <variable name=\"{}\" value=\"{}\"/>\n",
            xml_escape(name),
            xml_escape(value)
        ));
    }
    format!(
        "<document type=\"freeswitch/xml\">\n  <section name=\"directory\">\n    <domain name=\"{domain}\">\n      <params>\n        <param name=\"dial-string\" value=\"{dial}\"/>\n      </params>\n      <groups>\n        <group name=\"default\">\n          <users>\n            <user id=\"{user}\">\n              <params>\n                <param name=\"a1-hash\" value=\"{a1}\"/>\n              </params>\n              <variables>\n{vars}              </variables>\n            </user>\n          </users>\n        </group>\n      </groups>\n    </domain>\n  </section>\n</document>\n",
        domain = xml_escape(domain),
        dial = xml_escape(DIAL_STRING),
        user = xml_escape(user),
        a1 = xml_escape(a1),
    )
}

fn xml_response(body: String) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response.extensions_mut().insert(Passthrough);
    response
}

/// Whether the request carries the configured basic-auth login (constant-time comparison).
fn basic_auth_ok(headers: &HeaderMap, username: &str, password: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.trim().splitn(2, ' ');
    let (Some(scheme), Some(encoded)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{password}");
    // Length differences leak only the length of the configured login.
    decoded.len() == expected.len() && bool::from(decoded.ct_eq(expected.as_bytes()))
}

/// The lookup a request asks for: `(user, domain)`, or `None` for anything but a user lookup in
/// the directory section.
fn wanted(fields: &[(String, String)]) -> Option<(String, String)> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if get("section").as_deref() != Some("directory") {
        return None;
    }
    let user = get("user").or_else(|| get("sip_auth_username"))?;
    let domain = get("domain")
        .or_else(|| get("sip_auth_realm"))
        .or_else(|| {
            (get("key_name").as_deref() == Some("name"))
                .then(|| get("key_value"))
                .flatten()
        })?;
    Some((user, domain))
}

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    field_at(doc, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The variables FreeSWITCH puts on the device's channels.
fn variables(
    account_id: &str,
    device: &Value,
    user: &str,
    settings: &DirectorySettings,
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("account_id".to_string(), account_id.to_string()),
        ("user_context".to_string(), settings.user_context.clone()),
    ];
    if let Some(id) = text(device, "id") {
        vars.push(("device_id".into(), id.to_string()));
    }
    if let Some(owner) = text(device, "owner_id") {
        vars.push(("owner_id".into(), owner.to_string()));
    }
    let name = text(device, "caller_id.internal.name")
        .or_else(|| text(device, "name"))
        .unwrap_or(user);
    let number = text(device, "caller_id.internal.number").unwrap_or(user);
    vars.push(("effective_caller_id_name".into(), name.to_string()));
    vars.push(("effective_caller_id_number".into(), number.to_string()));
    if let Some(v) = text(device, "caller_id.external.name") {
        vars.push(("outbound_caller_id_name".into(), v.to_string()));
    }
    if let Some(v) = text(device, "caller_id.external.number") {
        vars.push(("outbound_caller_id_number".into(), v.to_string()));
    }
    vars
}

/// Looks up `user@domain` and renders the reply document.
fn lookup(state: &AppState, user: &str, domain: &str) -> Result<String, ApiError> {
    let Some((account_id, device)) = devices::sip_owner(state.store.as_ref(), user, domain)? else {
        tracing::debug!(user, domain, "directory: no such device");
        return Ok(NOT_FOUND_XML.to_string());
    };
    if field_at(&device, "enabled").and_then(Value::as_bool) == Some(false) {
        tracing::debug!(user, domain, "directory: device disabled");
        return Ok(NOT_FOUND_XML.to_string());
    }
    let Some(account) = state.store.account(&account_id)? else {
        return Ok(NOT_FOUND_XML.to_string());
    };
    let realm = devices::effective_realm(&device, account.realm.as_deref());
    if !realm.is_some_and(|r| r.eq_ignore_ascii_case(domain)) {
        return Ok(NOT_FOUND_XML.to_string());
    }
    let Some(password) = text(&device, "sip.password") else {
        tracing::debug!(user, domain, "directory: device has no sip.password");
        return Ok(NOT_FOUND_XML.to_string());
    };
    let a1 = a1_hash(user, domain, password);
    let vars = variables(&account_id, &device, user, &state.settings.directory);
    Ok(user_xml(domain, user, &a1, &vars))
}

async fn directory(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let settings = &state.settings.directory;
    let (Some(username), Some(password)) = (&settings.username, &settings.password) else {
        return Err(ApiError::NoRoute(req.uri().path().to_string()));
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| settings.allowed_peers.iter().any(|net| net.contains(ip))) {
        tracing::warn!(?peer, "directory request from a peer not allowed");
        return Err(ApiError::Forbidden("peer not allowed".into()));
    }
    if !basic_auth_ok(req.headers(), username, password) {
        let mut response = ApiError::Unauthorized.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"callflowd directory\""),
        );
        return Ok(response);
    }
    let mut fields = parse_query(req.uri().query().unwrap_or_default());
    let body = read_body(req.into_body(), MAX_FORM_BYTES).await?;
    fields.extend(parse_query(String::from_utf8_lossy(&body).trim()));
    let reply = match wanted(&fields) {
        Some((user, domain)) => lookup(&state, &user, &domain)?,
        None => NOT_FOUND_XML.to_string(),
    };
    Ok(xml_response(reply))
}

/// The directory routes (POST as mod_xml_curl sends; GET for `method=GET` bindings).
pub fn routes() -> Vec<RouteSpec> {
    let form = json!({"type": "object", "properties": {
        "section": {"type": "string"}, "tag_name": {"type": "string"}, "key_name": {"type": "string"},
        "key_value": {"type": "string"}, "user": {"type": "string"}, "domain": {"type": "string"},
        "action": {"type": "string"}}});
    vec![
        RouteSpec::new(Verb::Post, "/directory", "freeswitch_directory", directory)
            .summary("FreeSWITCH directory for mod_xml_curl (HTTP basic auth, peer allow-list)")
            .tag("freeswitch")
            .raw_request(&["application/x-www-form-urlencoded"], form)
            .raw(&["text/xml"])
            .response(json!({"type": "string"}))
            .error(401, "Wrong or missing basic-auth login")
            .error(403, "Peer not in directory_allowed_peers")
            .error(
                404,
                "The directory is off (directory_username/password not set)",
            ),
        RouteSpec::new(
            Verb::Get,
            "/directory",
            "freeswitch_directory_get",
            directory,
        )
        .summary("FreeSWITCH directory for mod_xml_curl bindings with method=GET (query string)")
        .tag("freeswitch")
        .raw(&["text/xml"])
        .response(json!({"type": "string"}))
        .error(401, "Wrong or missing basic-auth login")
        .error(403, "Peer not in directory_allowed_peers")
        .error(
            404,
            "The directory is off (directory_username/password not set)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1_and_escaping() {
        assert_eq!(
            a1_hash("2001", "callflowd.local", "s3cret"),
            hex::encode(Md5::digest(b"2001:callflowd.local:s3cret"))
        );
        assert_eq!(xml_escape("a&b<\"c'>"), "a&amp;b&lt;&quot;c&apos;&gt;");
        let xml = user_xml("d", "u", "h", &[("k".into(), "v&".into())]);
        assert!(xml.contains("<variable name=\"k\" value=\"v&amp;\"/>"));
        assert!(xml.contains("sofia_contact(*/${dialed_user}@${dialed_domain})"));
    }

    #[test]
    fn request_fields() {
        let fields = parse_query(
            "section=directory&tag_name=domain&key_name=name&key_value=acme.example&user=2001&domain=acme.example&action=sip_auth",
        );
        assert_eq!(
            wanted(&fields),
            Some(("2001".to_string(), "acme.example".to_string()))
        );
        let fields = parse_query(
            "section=directory&tag_name=domain&key_name=name&key_value=acme.example&purpose=gateways",
        );
        assert_eq!(wanted(&fields), None);
        let fields = parse_query("section=dialplan&user=1&domain=x");
        assert_eq!(wanted(&fields), None);
    }
}
