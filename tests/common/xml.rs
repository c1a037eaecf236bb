//! A small XML tree for tests (quick-xml events folded into elements): enough to check the
//! shape of the directory documents and the FreeSWITCH configuration files.
#![allow(dead_code)]

use quick_xml::Reader;
use quick_xml::events::Event;

/// A parsed XML element.
#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }

    pub fn children(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// Every descendant element named `name`, depth first.
    pub fn descendants(&self, name: &str) -> Vec<&Element> {
        let mut found = Vec::new();
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(e) = stack.pop() {
            if e.name == name {
                found.push(e);
            }
            stack.extend(e.children.iter().rev());
        }
        found
    }

    /// `<X name=".." value=".."/>` children as pairs.
    pub fn named_values(&self, tag: &str) -> Vec<(String, String)> {
        self.children(tag)
            .iter()
            .map(|e| {
                (
                    e.attr("name").unwrap_or_default().to_string(),
                    e.attr("value").unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// Parses a document (panics on malformed XML: this is for tests).
pub fn parse_xml(text: &str) -> Element {
    fn element(e: &quick_xml::events::BytesStart<'_>) -> Element {
        Element {
            name: e.name().into_inner().to_string(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.expect("attribute");
                    (
                        a.key.into_inner().to_string(),
                        a.normalized_value(quick_xml::XmlVersion::default())
                            .expect("value")
                            .into_owned(),
                    )
                })
                .collect(),
            children: Vec::new(),
        }
    }
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element {
        name: "#root".into(),
        attrs: Vec::new(),
        children: Vec::new(),
    }];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let el = element(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced XML");
    let mut root = stack.pop().unwrap();
    assert_eq!(root.children.len(), 1, "one root element");
    root.children.remove(0)
}
