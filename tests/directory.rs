//! Black-box tests of `POST /directory`, FreeSWITCH's mod_xml_curl directory binding: the XML
//! is parsed and checked against the shape FreeSWITCH reads (document/section/domain/params/
//! groups/group/users/user/params+variables), a1-hash included; plus not found, disabled devices,
//! realm overrides and the endpoint's protection (basic auth, peer allow-list, off by default).

mod common;

use base64::Engine as _;
use common::xml::parse_xml;
use common::{TestServer, send};
use md5::{Digest, Md5};
use serde_json::json;

const LOGIN: (&str, &str) = ("freeswitch", "xml-curl-secret");

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// mod_xml_curl's request for a registration of `user@domain`.
fn sip_auth_form(user: &str, domain: &str) -> String {
    format!(
        "hostname=fs1&section=directory&tag_name=domain&key_name=name&key_value={domain}\
         &Event-Name=REQUEST_PARAMS&Core-UUID=abc&action=sip_auth&sip_profile=callflowd-lab\
         &sip_user_agent=Linphone%2F5.2&sip_auth_username={user}&sip_auth_realm={domain}\
         &sip_auth_method=REGISTER&key=id&user={user}&domain={domain}&ip=127.0.0.1"
    )
}

async fn ask(server: &TestServer, auth: Option<&str>, form: &str) -> common::Resp {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    send(
        "POST",
        &format!("{}/directory", server.base),
        &headers,
        Some(form.as_bytes().to_vec()),
    )
    .await
}

async fn start() -> TestServer {
    TestServer::start_with(|config| {
        config.directory_username = Some(LOGIN.0.into());
        config.directory_password = Some(LOGIN.1.into());
        config.directory_user_context = "callflowd".into();
    })
    .await
}

fn assert_not_found(resp: &common::Resp) {
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(resp.header("content-type"), "text/xml");
    let doc = parse_xml(&String::from_utf8_lossy(&resp.body));
    assert_eq!(doc.name, "document");
    assert_eq!(doc.attr("type"), Some("freeswitch/xml"));
    let section = doc.child("section");
    assert_eq!(section.attr("name"), Some("result"));
    assert_eq!(section.child("result").attr("status"), Some("not found"));
}

#[tokio::test]
async fn directory_xml_for_a_device() {
    let server = start().await;
    let auth = basic(LOGIN.0, LOGIN.1);
    let users = format!("/v2/accounts/{}/users", server.account_id);
    let owner = server
        .put(&users, json!({"first_name": "Ann", "last_name": "Lee"}))
        .await;
    let owner_id = owner.data()["id"].as_str().unwrap().to_string();
    let devices = format!("/v2/accounts/{}/devices", server.account_id);
    let created = server
        .put(
            &devices,
            json!({"name": "Ann's softphone", "owner_id": owner_id,
                   "sip": {"username": "2001", "password": "pa<ss>&2001"},
                   "caller_id": {"internal": {"name": "Ann Lee", "number": "2001"},
                                 "external": {"number": "+15551230001"}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let device_id = created.data()["id"].as_str().unwrap().to_string();

    let resp = ask(
        &server,
        Some(&auth),
        &sip_auth_form("2001", "callflowd.local"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), "text/xml");
    let text = String::from_utf8_lossy(&resp.body).to_string();
    assert!(
        !text.contains("pa<ss>"),
        "the password never leaves: {text}"
    );
    let doc = parse_xml(&text);
    assert_eq!(doc.name, "document");
    assert_eq!(doc.attr("type"), Some("freeswitch/xml"));
    let section = doc.child("section");
    assert_eq!(section.attr("name"), Some("directory"));
    let domain = section.child("domain");
    assert_eq!(domain.attr("name"), Some("callflowd.local"));
    let domain_params = domain.child("params").named_values("param");
    let dial = domain_params
        .iter()
        .find(|(k, _)| k == "dial-string")
        .map(|(_, v)| v.as_str())
        .expect("dial-string");
    assert!(
        dial.contains("${sofia_contact(*/${dialed_user}@${dialed_domain})}"),
        "{dial}"
    );
    let group = domain.child("groups").child("group");
    assert_eq!(group.attr("name"), Some("default"));
    let users = group.child("users").children("user");
    assert_eq!(users.len(), 1);
    let user = users[0];
    assert_eq!(user.attr("id"), Some("2001"));
    let params = user.child("params").named_values("param");
    let expected_a1 = hex::encode(Md5::digest(b"2001:callflowd.local:pa<ss>&2001"));
    assert_eq!(params, vec![("a1-hash".to_string(), expected_a1)]);
    let vars = user.child("variables").named_values("variable");
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("variable {name} missing: {vars:?}"))
    };
    assert_eq!(var("account_id"), server.account_id);
    assert_eq!(var("device_id"), device_id);
    assert_eq!(var("owner_id"), owner_id);
    assert_eq!(var("user_context"), "callflowd");
    assert_eq!(var("effective_caller_id_name"), "Ann Lee");
    assert_eq!(var("effective_caller_id_number"), "2001");
    assert_eq!(var("outbound_caller_id_number"), "+15551230001");

    // user_call (an INVITE to user/2001@callflowd.local) gets the same user; GET works too.
    let resp = ask(
        &server,
        Some(&auth),
        "section=directory&tag_name=domain&key_name=name&key_value=callflowd.local&user=2001&domain=callflowd.local&action=user_call",
    )
    .await;
    assert_eq!(
        parse_xml(&String::from_utf8_lossy(&resp.body))
            .child("section")
            .attr("name"),
        Some("directory")
    );
    let resp = send(
        "GET",
        &format!(
            "{}/directory?section=directory&user=2001&domain=callflowd.local&action=user_call",
            server.base
        ),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(String::from_utf8_lossy(&resp.body).contains("a1-hash"));

    // Unknown user, unknown domain, domain-only lookups, other sections: not found.
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            &sip_auth_form("2999", "callflowd.local"),
        )
        .await,
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            &sip_auth_form("2001", "elsewhere.example"),
        )
        .await,
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            "section=directory&tag_name=domain&key_name=name&key_value=callflowd.local&purpose=gateways",
        )
        .await,
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            "section=dialplan&user=2001&domain=callflowd.local",
        )
        .await,
    );

    // A disabled device is not found; enabled again, it is.
    let item = format!("{devices}/{device_id}");
    assert_eq!(
        server.patch(&item, json!({"enabled": false})).await.status,
        200
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            &sip_auth_form("2001", "callflowd.local"),
        )
        .await,
    );
    assert_eq!(
        server.patch(&item, json!({"enabled": true})).await.status,
        200
    );
    assert!(
        String::from_utf8_lossy(
            &ask(
                &server,
                Some(&auth),
                &sip_auth_form("2001", "callflowd.local")
            )
            .await
            .body
        )
        .contains("a1-hash")
    );

    // sip.realm overrides the account realm.
    assert_eq!(
        server
            .patch(&item, json!({"sip": {"realm": "branch.example"}}))
            .await
            .status,
        200
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            &sip_auth_form("2001", "callflowd.local"),
        )
        .await,
    );
    let resp = ask(
        &server,
        Some(&auth),
        &sip_auth_form("2001", "branch.example"),
    )
    .await;
    let doc = parse_xml(&String::from_utf8_lossy(&resp.body));
    let domain = doc.child("section").child("domain");
    assert_eq!(domain.attr("name"), Some("branch.example"));
    let user = domain
        .child("groups")
        .child("group")
        .child("users")
        .child("user");
    let a1 = user.child("params").named_values("param");
    assert_eq!(
        a1[0].1,
        hex::encode(Md5::digest(b"2001:branch.example:pa<ss>&2001"))
    );

    // A device without a password cannot register.
    assert_eq!(
        server
            .patch(&item, json!({"sip": {"password": null}}))
            .await
            .status,
        200
    );
    assert_not_found(
        &ask(
            &server,
            Some(&auth),
            &sip_auth_form("2001", "branch.example"),
        )
        .await,
    );
    server.shutdown().await;
}

#[tokio::test]
async fn directory_protection() {
    let server = start().await;
    let form = sip_auth_form("2001", "callflowd.local");
    for auth in [
        None,
        Some(basic(LOGIN.0, "wrong")),
        Some(basic("someone", LOGIN.1)),
        Some("Bearer xyz".to_string()),
        Some("Basic !!!".to_string()),
    ] {
        let resp = ask(&server, auth.as_deref(), &form).await;
        assert_eq!(resp.status, 401, "{auth:?}");
        assert_eq!(resp.json["error"], "401");
        assert!(resp.header("www-authenticate").starts_with("Basic"));
    }
    server.shutdown().await;

    // Peers outside the allow-list: 403 even with the right login.
    let server = TestServer::start_with(|config| {
        config.directory_username = Some(LOGIN.0.into());
        config.directory_password = Some(LOGIN.1.into());
        config.directory_allowed_peers = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let resp = ask(&server, Some(&basic(LOGIN.0, LOGIN.1)), &form).await;
    assert_eq!(resp.status, 403, "{}", resp.json);
    assert_eq!(resp.json["message"], "forbidden");
    server.shutdown().await;

    // Without configured credentials the endpoint does not exist.
    let server = TestServer::start().await;
    let resp = ask(&server, Some(&basic(LOGIN.0, LOGIN.1)), &form).await;
    assert_eq!(resp.status, 404, "{}", resp.json);
    assert_eq!(resp.header("content-type"), "application/json");
    server.shutdown().await;
}
