//! Reading a template from untrusted JSON: size limits first, then the schema, then every rule
//! a schema cannot say (unique names, depth, colours, lengths). All problems are reported
//! together, each with where it is.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;

use serde_json::Value;
use takumi::prelude::Style;

use crate::error::{Error, Result};
use crate::template::{
    Common, Edges, Frame, Layer, LayerKind, Length, Paint, SCHEMA_VERSION, Shape, ShapeKind,
    Template,
};

/// Bounds on what a template may ask for. Checked before any layout work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest template JSON in bytes.
    pub max_template_bytes: usize,
    /// Longest single string (text, SVG, data URI) in bytes, before and after binding.
    pub max_string_bytes: usize,
    /// Most layers in one template.
    pub max_layers: usize,
    /// Deepest layer nesting.
    pub max_depth: usize,
    /// Largest page side in pixels.
    pub max_side: u32,
    /// Largest page area in pixels (after `scale`).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_template_bytes: 2 << 20,
            max_string_bytes: 1 << 20,
            max_layers: 1000,
            max_depth: 32,
            max_side: 8192,
            max_pixels: 40_000_000,
        }
    }
}

/// Parses and checks a template.
pub fn parse(json: &[u8], limits: &Limits) -> Result<Template> {
    if json.len() > limits.max_template_bytes {
        return Err(Error::Invalid(vec![format!(
            "template is {} bytes; at most {} are accepted",
            json.len(),
            limits.max_template_bytes
        )]));
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| Error::Template(format!("not JSON: {e}")))?;
    from_value(value, limits)
}

/// Checks a template already read as JSON.
pub fn from_value(value: Value, limits: &Limits) -> Result<Template> {
    let mut problems = Vec::new();
    check_strings(&value, "", limits, &mut problems);
    if let Some(layers) = value.get("layers") {
        check_layer_keys(layers, "layers", 1, limits, &mut problems);
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let template: Template =
        serde_json::from_value(value).map_err(|e| Error::Invalid(vec![e.to_string()]))?;
    check(&template, limits)?;
    Ok(template)
}

/// Checks the rules of a template already read (also run after binding, since data can make
/// strings long or colours invalid).
pub fn check(t: &Template, limits: &Limits) -> Result<()> {
    let mut p = Vec::new();
    if t.schema != SCHEMA_VERSION {
        p.push(format!(
            "schema {} is not supported (this build reads {SCHEMA_VERSION})",
            t.schema
        ));
    }
    let (w, h) = (t.page.width, t.page.height);
    if w == 0 || h == 0 || w > limits.max_side || h > limits.max_side {
        p.push(format!(
            "page: {w}×{h} is outside 1–{} pixels per side",
            limits.max_side
        ));
    } else if u64::from(w) * u64::from(h) > limits.max_pixels {
        p.push(format!(
            "page: {w}×{h} is more than {} pixels",
            limits.max_pixels
        ));
    }
    if !(1..=2400).contains(&t.page.dpi) {
        p.push("page.dpi: must be 1–2400".to_owned());
    }
    if let Some(bg) = &t.page.background {
        paint("page.background", bg, &mut p);
    }
    for name in t.variables.keys() {
        if !valid_name(name) {
            p.push(format!(
                "variables: {name:?} is not a valid name (letters, digits, _, -, .; 1–64)"
            ));
        }
    }
    let all = t.walk();
    if all.len() > limits.max_layers {
        p.push(format!(
            "{} layers; at most {} are allowed",
            all.len(),
            limits.max_layers
        ));
    }
    let mut names = HashSet::new();
    for (depth, layer) in &all {
        let at = format!("layer {:?}", layer.common.name);
        if *depth > limits.max_depth {
            p.push(format!(
                "{at}: nested {depth} deep; at most {} levels",
                limits.max_depth
            ));
        }
        if !valid_name(&layer.common.name) {
            p.push(format!(
                "{at}: names use letters, digits, _, -, . (1–64 characters)"
            ));
        } else if !names.insert(layer.common.name.as_str()) {
            p.push(format!("{at}: the name is used twice"));
        }
        common(&at, &layer.common, &mut p);
        kind(&at, layer, &mut p);
        if p.len() > 50 {
            p.push("… (more problems not listed)".to_owned());
            break;
        }
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn finite(at: &str, field: &str, v: Option<f32>, range: (f32, f32), p: &mut Vec<String>) {
    if let Some(v) = v
        && !(v.is_finite() && v >= range.0 && v <= range.1)
    {
        p.push(format!(
            "{at}.{field}: {v} is outside {}–{}",
            range.0, range.1
        ));
    }
}

const COORD: (f32, f32) = (-100_000.0, 100_000.0);
const SIZE: (f32, f32) = (0.0, 100_000.0);

fn length(at: &str, field: &str, l: &Option<Length>, p: &mut Vec<String>) {
    match l {
        Some(Length::Px(v)) => finite(at, field, Some(*v), SIZE, p),
        Some(Length::Keyword(k)) if k == "auto" || has_placeholder(k) => {}
        Some(Length::Keyword(k)) => match k.strip_suffix('%').map(str::parse::<f32>) {
            Some(Ok(v)) if (0.0..=1000.0).contains(&v) => {}
            _ => p.push(format!(
                "{at}.{field}: {k:?} is not a number of pixels, a percentage or \"auto\""
            )),
        },
        None => {}
    }
}

fn has_placeholder(s: &str) -> bool {
    s.contains("{{")
}

/// Whether `c` is one CSS colour and nothing else (the value is written into CSS, so a `;` or
/// a brace must never get through).
pub(crate) fn is_color(c: &str) -> bool {
    let c = c.trim();
    !c.is_empty()
        && c.len() <= 64
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || " #(),.%/-".contains(ch))
        && Style::from_str(&format!("color: {c}")).is_ok_and(|s| !s.declarations.is_empty())
}

fn color(at: &str, c: &Option<String>, p: &mut Vec<String>) {
    if let Some(c) = c
        && !has_placeholder(c)
        && !is_color(c)
    {
        p.push(format!("{at}: {c:?} is not a CSS colour"));
    }
}

fn paint(at: &str, paint: &Paint, p: &mut Vec<String>) {
    match paint {
        Paint::Color(c) => color(at, &Some(c.clone()), p),
        Paint::Linear { linear: g } | Paint::Radial { radial: g } => {
            if g.stops.len() < 2 || g.stops.len() > 16 {
                p.push(format!("{at}: a gradient has 2–16 stops"));
            }
            finite(at, "angle", Some(g.angle), (-3600.0, 3600.0), p);
            for s in &g.stops {
                color(at, &Some(s.color.clone()), p);
                finite(at, "at", s.at, (0.0, 1.0), p);
            }
        }
    }
}

fn common(at: &str, c: &Common, p: &mut Vec<String>) {
    finite(at, "x", c.x, COORD, p);
    finite(at, "y", c.y, COORD, p);
    length(at, "width", &c.width, p);
    length(at, "height", &c.height, p);
    finite(at, "grow", c.grow, (0.0, 1000.0), p);
    finite(at, "rotation", c.rotation, (-3600.0, 3600.0), p);
    finite(at, "opacity", c.opacity, (0.0, 1.0), p);
}

fn kind(at: &str, layer: &Layer, p: &mut Vec<String>) {
    match &layer.kind {
        LayerKind::Frame(f) => frame(at, f, p),
        LayerKind::Group(_) => {}
        LayerKind::Text(t) => {
            if t.text.is_none() && t.spans.is_empty() {
                p.push(format!("{at}: a text layer needs `text` or `spans`"));
            }
            finite(at, "size", Some(t.size), (1.0, 2000.0), p);
            finite(at, "min_size", t.min_size, (1.0, 2000.0), p);
            finite(at, "line_height", t.line_height, (0.1, 10.0), p);
            finite(at, "letter_spacing", t.letter_spacing, (-100.0, 1000.0), p);
            if t.max_lines == Some(0) || t.max_lines.is_some_and(|n| n > 1000) {
                p.push(format!("{at}.max_lines: must be 1–1000"));
            }
            if let Some(w) = t.font.weight
                && !(100..=900).contains(&w)
            {
                p.push(format!("{at}.font.weight: must be 100–900"));
            }
            color(&format!("{at}.color"), &t.color, p);
            for s in &t.spans {
                color(&format!("{at}.spans.color"), &s.color, p);
            }
            if let Some(l) = &t.lang
                && !(l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                p.push(format!("{at}.lang: {l:?} is not a language tag"));
            }
            if t.fit == crate::template::FitMode::Shrink
                && !matches!(layer.common.width, Some(Length::Px(_)))
            {
                p.push(format!(
                    "{at}: fit \"shrink\" needs a width in pixels (and a height or max_lines)"
                ));
            }
        }
        LayerKind::Image(i) => {
            if i.src.trim().is_empty() {
                p.push(format!("{at}.src: empty"));
            }
            if let Some(f) = i.focal {
                finite(at, "focal.x", Some(f.x), (0.0, 1.0), p);
                finite(at, "focal.y", Some(f.y), (0.0, 1.0), p);
            }
            finite(at, "radius", i.radius, SIZE, p);
            finite(at, "blur", i.blur, (0.0, 250.0), p);
        }
        LayerKind::Shape(s) => shape(at, layer, s, p),
        LayerKind::Svg(s) => {
            if !has_placeholder(&s.svg) && !s.svg.trim_start().starts_with('<') {
                p.push(format!("{at}.svg: not SVG markup"));
            }
        }
        LayerKind::Qr(q) => {
            if q.data.is_empty() || q.data.len() > 2953 {
                p.push(format!("{at}.data: a QR code holds 1–2953 bytes"));
            }
            color(&format!("{at}.color"), &q.color, p);
            color(&format!("{at}.background"), &q.background, p);
            if q.margin.is_some_and(|m| m > 16) {
                p.push(format!("{at}.margin: at most 16 modules"));
            }
        }
        LayerKind::Barcode(b) => {
            if !has_placeholder(&b.data)
                && let Err(e) = crate::codes::barcode_modules(b.symbology, &b.data)
            {
                p.push(format!("{at}.data: {e}"));
            }
            color(&format!("{at}.color"), &b.color, p);
            color(&format!("{at}.background"), &b.background, p);
        }
    }
}

fn frame(at: &str, f: &Frame, p: &mut Vec<String>) {
    if let Some(c) = f.columns
        && !(1..=64).contains(&c)
    {
        p.push(format!("{at}.columns: must be 1–64"));
    }
    finite(at, "gap", f.gap, SIZE, p);
    match &f.padding {
        Some(Edges::All(v)) => finite(at, "padding", Some(*v), SIZE, p),
        Some(Edges::Sides(s)) => s
            .iter()
            .for_each(|v| finite(at, "padding", Some(*v), SIZE, p)),
        None => {}
    }
    if let Some(bg) = &f.background {
        paint(&format!("{at}.background"), bg, p);
    }
    if let Some(b) = &f.border {
        finite(at, "border.width", Some(b.width), (0.0, 1000.0), p);
        color(&format!("{at}.border.color"), &Some(b.color.clone()), p);
    }
    finite(at, "radius", f.radius, SIZE, p);
    if let Some(s) = &f.shadow {
        finite(at, "shadow.x", Some(s.x), COORD, p);
        finite(at, "shadow.y", Some(s.y), COORD, p);
        finite(at, "shadow.blur", Some(s.blur), (0.0, 1000.0), p);
        finite(at, "shadow.spread", Some(s.spread), (-1000.0, 1000.0), p);
        color(&format!("{at}.shadow.color"), &Some(s.color.clone()), p);
    }
}

fn shape(at: &str, layer: &Layer, s: &Shape, p: &mut Vec<String>) {
    if let Some(fill) = &s.fill {
        paint(&format!("{at}.fill"), fill, p);
    }
    if let Some(b) = &s.stroke {
        finite(at, "stroke.width", Some(b.width), (0.0, 1000.0), p);
        color(&format!("{at}.stroke.color"), &Some(b.color.clone()), p);
    }
    finite(at, "radius", s.radius, SIZE, p);
    if matches!(s.shape, ShapeKind::Path | ShapeKind::Line) {
        let px = |l: &Option<Length>| matches!(l, Some(Length::Px(_)));
        if !(px(&layer.common.width) && px(&layer.common.height)) {
            p.push(format!(
                "{at}: a line or path needs a width and height in pixels"
            ));
        }
    }
    if s.shape == ShapeKind::Path {
        match &s.d {
            Some(d)
                if d.chars().all(|c| {
                    c.is_ascii_digit() || " ,.-+eEMmLlHhVvCcSsQqTtAaZz\n\t".contains(c)
                }) => {}
            Some(_) => p.push(format!("{at}.d: not SVG path data")),
            None => p.push(format!("{at}: a path needs `d`")),
        }
    }
}

/// Every string in the JSON within `max_string_bytes`.
fn check_strings(v: &Value, at: &str, limits: &Limits, p: &mut Vec<String>) {
    match v {
        Value::String(s) if s.len() > limits.max_string_bytes => p.push(format!(
            "{}: a string of {} bytes; at most {} are accepted",
            if at.is_empty() { "template" } else { at },
            s.len(),
            limits.max_string_bytes
        )),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| check_strings(x, &format!("{at}[{i}]"), limits, p)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            check_strings(x, &format!("{at}.{k}"), limits, p);
        }),
        _ => {}
    }
}

/// Property names each layer type accepts (the layer structs flatten, so serde cannot refuse
/// unknown keys itself); taken from the generated schema so the two cannot drift.
fn known_keys(kind: &str) -> Option<&'static BTreeSet<String>> {
    static KEYS: OnceLock<std::collections::BTreeMap<String, BTreeSet<String>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        fn props<T: schemars::JsonSchema>() -> BTreeSet<String> {
            let s = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
            s.get("properties")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        }
        let common = props::<Common>();
        let with = |mut own: BTreeSet<String>| {
            own.extend(common.iter().cloned());
            own.insert("type".to_owned());
            own
        };
        use crate::template as t;
        [
            ("frame", with(props::<t::Frame>())),
            ("group", with(props::<t::Group>())),
            ("text", with(props::<t::Text>())),
            ("image", with(props::<t::Image>())),
            ("shape", with(props::<t::Shape>())),
            ("svg", with(props::<t::Svg>())),
            ("qr", with(props::<t::Qr>())),
            ("barcode", with(props::<t::Barcode>())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    });
    keys.get(kind)
}

fn check_layer_keys(v: &Value, at: &str, depth: usize, limits: &Limits, p: &mut Vec<String>) {
    let Value::Array(layers) = v else { return };
    if depth > limits.max_depth {
        p.push(format!(
            "{at}: layers nest more than {} levels",
            limits.max_depth
        ));
        return;
    }
    for (i, layer) in layers.iter().enumerate() {
        let Value::Object(o) = layer else { continue };
        let name = o.get("name").and_then(Value::as_str).unwrap_or("?");
        let here = format!("{at}[{i}] ({name})");
        let Some(kind) = o.get("type").and_then(Value::as_str) else {
            p.push(format!("{here}: missing `type`"));
            continue;
        };
        let Some(keys) = known_keys(kind) else {
            p.push(format!(
                "{here}: unknown type {kind:?} (frame, group, text, image, shape, svg, qr, barcode)"
            ));
            continue;
        };
        let unknown: Vec<&str> = o
            .keys()
            .filter(|k| !keys.contains(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            p.push(format!(
                "{here}: unknown properties for a {kind}: {}",
                unknown.join(", ")
            ));
        }
        if let Some(children) = o.get("children") {
            check_layer_keys(children, &format!("{here}.children"), depth + 1, limits, p);
        }
    }
}
