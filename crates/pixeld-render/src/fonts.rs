//! Fonts: the bundled OFL set, parsed once, plus fonts an organisation uploads.

use std::collections::BTreeMap;

use takumi::prelude::{FontResource, Fonts};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/bundled_fonts.rs"));

/// Families every render falls back through, in order, after the requested one: Latin, the
/// scripts Latin fonts lack, then emoji.
const FALLBACK: &[&str] = &[
    "Inter",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans SC",
    "Twemoji Mozilla",
];

/// Short names accepted in templates for the bundled families.
const ALIASES: &[(&str, &str)] = &[
    ("sans", "Inter"),
    ("sans-serif", "Inter"),
    ("serif", "Noto Serif"),
    ("mono", "JetBrains Mono"),
    ("monospace", "JetBrains Mono"),
    ("emoji", "Twemoji Mozilla"),
];

/// Largest font file accepted from a user (uncompressed fonts with CJK coverage reach ~20 MB).
pub const MAX_FONT_BYTES: usize = 32 << 20;

/// A set of registered font families. Cloning is cheap (the registry is shared copy-on-write),
/// so an organisation's library is the bundled one plus its uploads.
#[derive(Clone)]
pub struct FontLibrary {
    pub(crate) fonts: Fonts,
    /// Different for every set of fonts a library has held (copies share it): part of the key
    /// of what the renderer caches from text it drew.
    pub(crate) id: u64,
    /// Lower-cased name → family name as registered.
    families: BTreeMap<String, String>,
}

impl FontLibrary {
    /// The bundled fonts (Inter, Noto Serif, JetBrains Mono, Noto Sans Arabic/Hebrew/Devanagari/SC,
    /// Twemoji), decompressed and registered.
    pub fn bundled() -> Result<Self> {
        let mut lib = FontLibrary {
            fonts: Fonts::default(),
            id: 0,
            families: BTreeMap::new(),
        };
        for (_, bytes) in BUNDLED {
            lib.register(FontResource::new(*bytes))?;
        }
        Ok(lib)
    }

    fn register(&mut self, font: FontResource<'_>) -> Result<Vec<String>> {
        let families = self
            .fonts
            .register(font)
            .map_err(|e| Error::Font(format!("{e}")))?;
        let names: Vec<String> = families.into_iter().map(|f| f.name).collect();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for n in &names {
            self.families.insert(n.to_lowercase(), n.clone());
        }
        Ok(names)
    }

    /// A copy of this library with one more font (TTF, OTF, WOFF or WOFF2); returns the copy and
    /// the family names the font provides.
    pub fn with_font(&self, bytes: &[u8]) -> Result<(Self, Vec<String>)> {
        if bytes.len() > MAX_FONT_BYTES {
            return Err(Error::Font(format!(
                "font file is {} bytes; at most {MAX_FONT_BYTES} are accepted",
                bytes.len()
            )));
        }
        let sniff = bytes.get(..4).unwrap_or_default();
        let known = [
            b"\x00\x01\x00\x00".as_slice(),
            b"OTTO",
            b"true",
            b"wOFF",
            b"wOF2",
        ];
        if !known.contains(&sniff) {
            return Err(Error::Font(
                "not a TTF, OTF, WOFF or WOFF2 font file".to_owned(),
            ));
        }
        let mut copy = self.clone();
        let names = copy.register(FontResource::new(bytes.to_vec()))?;
        if names.is_empty() {
            return Err(Error::Font("the font file holds no usable face".to_owned()));
        }
        Ok((copy, names))
    }

    /// Every registered family name, sorted.
    pub fn families(&self) -> Vec<String> {
        self.families.values().cloned().collect()
    }

    /// The registered family a template's `font.family` names (case-insensitive, aliases
    /// `sans`, `serif`, `mono`, `emoji`), if any.
    pub fn resolve(&self, name: &str) -> Option<&str> {
        let lower = name.trim().to_lowercase();
        let lower = ALIASES
            .iter()
            .find(|(a, _)| *a == lower)
            .map_or(lower, |(_, f)| f.to_lowercase());
        self.families.get(&lower).map(String::as_str)
    }

    /// The CSS `font-family` list for a requested family: it, then the fallback chain.
    pub(crate) fn css_family_list(&self, requested: Option<&str>) -> String {
        let mut list: Vec<&str> = Vec::with_capacity(FALLBACK.len() + 1);
        if let Some(f) = requested.and_then(|r| self.resolve(r)) {
            list.push(f);
        }
        for f in FALLBACK {
            if !list.contains(f) && self.families.contains_key(&f.to_lowercase()) {
                list.push(f);
            }
        }
        list.iter()
            .map(|f| format!("\"{}\"", f.replace(['"', '\\'], "")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
