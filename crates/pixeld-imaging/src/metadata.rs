//! EXIF and ICC: reading a summary, and rewriting what an output may keep.

use exif::{In, Tag, Value};
use serde::{Deserialize, Serialize};

/// What a user may want to know from the EXIF block, and nothing that would leak more.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExifSummary {
    /// Camera maker, e.g. `Canon`.
    pub make: Option<String>,
    /// Camera model, e.g. `EOS 5D`.
    pub model: Option<String>,
    /// When the photo was taken, as written by the camera (`YYYY-MM-DD HH:MM:SS`, no zone).
    pub taken_at: Option<String>,
    /// Whether the file carries a GPS position (the position itself is never reported).
    pub gps: bool,
    /// EXIF orientation 1-8 (1 = upright).
    pub orientation: u8,
}

/// Removes the `Exif\0\0` APP1 preamble when present, leaving the TIFF structure.
pub(crate) fn strip_exif_prefix(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(b"Exif\0") {
        let n = if data.get(5) == Some(&0) { 6 } else { 5 };
        data.drain(..n);
    }
    data
}

pub(crate) fn parse(tiff: &[u8]) -> Result<exif::Exif, String> {
    exif::Reader::new()
        .read_raw(tiff.to_vec())
        .map_err(|e| format!("EXIF block ignored: {e}"))
}

/// EXIF orientation (1-8), 1 when absent or out of range.
pub(crate) fn orientation(exif: &exif::Exif) -> u8 {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8)
}

fn text(exif: &exif::Exif, tag: Tag) -> Option<String> {
    let field = exif.get_field(tag, In::PRIMARY)?;
    let Value::Ascii(parts) = &field.value else {
        return None;
    };
    let raw = parts.first()?;
    let s = String::from_utf8_lossy(raw)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_owned();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn summary(exif: &exif::Exif) -> ExifSummary {
    let taken_at = text(exif, Tag::DateTimeOriginal)
        .or_else(|| text(exif, Tag::DateTime))
        .map(|d| match exif::DateTime::from_ascii(d.as_bytes()) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            ),
            Err(_) => d,
        });
    ExifSummary {
        make: text(exif, Tag::Make),
        model: text(exif, Tag::Model),
        taken_at,
        gps: has_gps(exif),
        orientation: orientation(exif),
    }
}

fn has_gps(exif: &exif::Exif) -> bool {
    exif.fields()
        .any(|f| f.tag == Tag::GPSInfoIFDPointer || f.tag.context() == exif::Context::Gps)
}

/// Rewrites EXIF for an output that keeps metadata: orientation reset to 1 (the pixels are
/// already upright), thumbnail dropped (it would show the old crop), and GPS removed unless
/// `keep_gps`. Returns the TIFF structure, or `None` when nothing is left or it cannot be
/// rewritten.
pub(crate) fn rewrite_exif(tiff: &[u8], keep_gps: bool) -> Option<Vec<u8>> {
    let exif = parse(tiff).ok()?;
    let upright = exif::Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![1]),
    };
    let kept: Vec<&exif::Field> = exif
        .fields()
        .filter(|f| f.ifd_num == In::PRIMARY)
        // The writer recreates the IFD pointers itself.
        .filter(|f| {
            !matches!(
                f.tag,
                Tag::ExifIFDPointer | Tag::GPSInfoIFDPointer | Tag::InteropIFDPointer
            )
        })
        .filter(|f| f.tag != Tag::Orientation)
        .filter(|f| keep_gps || f.tag.context() != exif::Context::Gps)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut w = exif::experimental::Writer::new();
    w.push_field(&upright);
    for f in kept {
        w.push_field(f);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    w.write(&mut out, exif.little_endian()).ok()?;
    Some(out.into_inner())
}

/// The human-readable description of an ICC profile, e.g. `Display P3`.
pub(crate) fn icc_description(icc: &[u8]) -> Option<String> {
    let profile = moxcms::ColorProfile::new_from_slice(icc).ok()?;
    let text = match profile.description? {
        moxcms::ProfileText::PlainString(s) => s,
        moxcms::ProfileText::Localizable(list) => list.into_iter().next()?.value,
        moxcms::ProfileText::Description(d) => d.ascii_string,
    };
    let text = text
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_owned();
    (!text.is_empty()).then_some(text)
}
