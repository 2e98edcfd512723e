//! Data binding: `{{variable}}` placeholders and Bannerbear-style `modifications`.
//!
//! Binding works on the template's JSON before it is read into [`Template`], so a placeholder
//! may sit in any string property. Every problem is collected and reported at once: a user
//! fixing a batch of CSV rows wants the whole list, not one name per attempt.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::template::Template;

/// Values for a template's variables (strings; numbers and booleans in JSON data are accepted
/// and written as text).
pub type Data = BTreeMap<String, String>;

/// One Bannerbear-style change to a named layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modification {
    /// The layer's name.
    pub name: String,
    /// New text of a text layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// New source of an image layer (URL, `asset:{id}` or data URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// New colour: text colour, shape fill, frame background or QR/barcode colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Hide or show the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// New data of a QR code or barcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// Turns a JSON object of data (`{"title": "Hi", "n": 3}`) into [`Data`]; nested values are an
/// error naming the key.
pub fn data_from_json(value: &Value) -> Result<Data> {
    let Value::Object(map) = value else {
        return Err(Error::Data(
            "data must be a JSON object of names to values".into(),
        ));
    };
    let mut data = Data::new();
    let mut nested = Vec::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                data.insert(k.clone(), s.clone());
            }
            Value::Number(n) => {
                data.insert(k.clone(), n.to_string());
            }
            Value::Bool(b) => {
                data.insert(k.clone(), b.to_string());
            }
            Value::Null => {}
            _ => nested.push(k.clone()),
        }
    }
    if nested.is_empty() {
        Ok(data)
    } else {
        Err(Error::Data(format!(
            "data values must be strings, numbers or booleans; not: {}",
            nested.join(", ")
        )))
    }
}

/// The placeholder names used anywhere in a template, sorted.
pub fn placeholders(template: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    visit_strings(template, &mut |s| {
        for name in names_in(s) {
            out.insert(name.to_owned());
        }
    });
    out
}

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| visit_strings(x, f)),
        Value::Object(o) => o.values().for_each(|x| visit_strings(x, f)),
        _ => {}
    }
}

/// `{{ name }}` occurrences in `s` (names are trimmed).
fn names_in(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let start = rest.find("{{")?;
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        rest = &after[end + 2..];
        Some(after[..end].trim())
    })
}

/// Applies data and modifications to a template and reads the result. Errors list every
/// missing variable, every over-long value and every unknown layer name together.
pub fn bind(template: &Template, data: &Data, modifications: &[Modification]) -> Result<Template> {
    let mut value = serde_json::to_value(template).map_err(|e| Error::Template(e.to_string()))?;
    let mut problems = Vec::new();

    // Which variables have values: data, else declared defaults.
    let mut values: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, var) in &template.variables {
        if let Some(d) = &var.default {
            values.insert(name, d);
        }
    }
    for (k, v) in data {
        values.insert(k, v);
    }
    let used = placeholders(&value);
    let missing: Vec<&str> = used
        .iter()
        .map(String::as_str)
        .filter(|n| !values.contains_key(n))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing variables: {}", missing.join(", ")));
    }
    let too_long: Vec<String> = template
        .variables
        .iter()
        .filter_map(|(name, var)| {
            let max = var.max_length?;
            let got = values.get(name.as_str())?.chars().count();
            (got > max as usize).then(|| format!("{name} ({got} > {max} characters)"))
        })
        .collect();
    if !too_long.is_empty() {
        problems.push(format!("values too long: {}", too_long.join(", ")));
    }

    // Modifications by layer name.
    if !modifications.is_empty() {
        let mut by_name: BTreeMap<&str, &Modification> = BTreeMap::new();
        for m in modifications {
            by_name.insert(m.name.as_str(), m);
        }
        let mut seen = BTreeSet::new();
        if let Some(layers) = value.get_mut("layers") {
            apply_modifications(layers, &by_name, &mut seen, &mut problems);
        }
        let unknown: Vec<&str> = by_name
            .keys()
            .copied()
            .filter(|n| !seen.contains(*n))
            .collect();
        if !unknown.is_empty() {
            problems.push(format!("unknown layers: {}", unknown.join(", ")));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Data(problems.join("; ")));
    }

    substitute(&mut value, &values);
    serde_json::from_value(value).map_err(|e| Error::Data(format!("after binding: {e}")))
}

/// Fills `{{name}}` placeholders in one string from `data` (unknown names become empty).
pub fn fill_placeholders(s: &str, data: &Data) -> String {
    let values: BTreeMap<&str, &str> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut v = Value::String(s.to_owned());
    substitute(&mut v, &values);
    match v {
        Value::String(s) => s,
        _ => String::new(),
    }
}

fn substitute(v: &mut Value, values: &BTreeMap<&str, &str>) {
    match v {
        Value::String(s) if s.contains("{{") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start + 2..].find("}}") else {
                    break;
                };
                out.push_str(&rest[..start]);
                let name = rest[start + 2..start + 2 + end].trim();
                out.push_str(values.get(name).copied().unwrap_or_default());
                rest = &rest[start + 2 + end + 2..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, values)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, values)),
        _ => {}
    }
}

fn apply_modifications<'a>(
    layers: &mut Value,
    by_name: &BTreeMap<&'a str, &'a Modification>,
    seen: &mut BTreeSet<&'a str>,
    problems: &mut Vec<String>,
) {
    let Value::Array(layers) = layers else {
        return;
    };
    for layer in layers {
        let Value::Object(obj) = layer else { continue };
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some((&key, m)) = by_name.get_key_value(name.as_str()) {
            seen.insert(key);
            let kind = obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let kind = kind.as_str();
            let mut set = |field: &str, v: &Option<String>, allowed: &[&str], what: &str| {
                if let Some(v) = v {
                    if allowed.contains(&kind) {
                        obj.insert(field.to_owned(), Value::String(v.clone()));
                    } else {
                        problems.push(format!("layer {name} is a {kind}: it has no {what}"));
                    }
                }
            };
            set("text", &m.text, &["text"], "text");
            set("src", &m.image_url, &["image"], "image_url");
            set("data", &m.data, &["qr", "barcode"], "data");
            let color_field = match kind {
                "text" | "qr" | "barcode" => "color",
                "shape" => "fill",
                _ => "background",
            };
            set(
                color_field,
                &m.color,
                &["text", "qr", "barcode", "shape", "frame"],
                "color",
            );
            if kind == "text" && m.text.is_some() {
                obj.remove("spans");
            }
            if let Some(h) = m.hidden {
                obj.insert("hidden".to_owned(), Value::Bool(h));
            }
        }
        if let Some(children) = obj.get_mut("children") {
            apply_modifications(children, by_name, seen, problems);
        }
    }
}
