//! The processing options: one struct shared by CLI flags, URL query and JSON body.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// How the image is fitted into `width` × `height` (the same words as sharp and CSS
/// `object-fit`). With only one of `width`/`height` set, the other follows the aspect ratio
/// and the fit does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the whole box, cropping the overflow (positioned by [`Gravity`]).
    Cover,
    /// Fit inside the box and pad the rest with the background colour.
    Contain,
    /// Stretch to exactly the box, ignoring the aspect ratio.
    Fill,
    /// Fit inside the box, output may be smaller than the box on one side (default).
    #[default]
    Inside,
    /// Cover the box without cropping, output may be larger than the box on one side.
    Outside,
}

/// Which part of the image is kept when [`Fit::Cover`] crops, or where [`Fit::Contain`]
/// places the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gravity {
    /// The middle (default).
    #[default]
    Center,
    /// Top edge.
    North,
    /// Top-right corner.
    Northeast,
    /// Right edge.
    East,
    /// Bottom-right corner.
    Southeast,
    /// Bottom edge.
    South,
    /// Bottom-left corner.
    Southwest,
    /// Left edge.
    West,
    /// Top-left corner.
    Northwest,
    /// The most detailed region (highest luminance entropy).
    Smart,
}

impl Gravity {
    /// Fractions (0 = left/top, 1 = right/bottom) for the fixed gravities; `None` for smart.
    pub(crate) fn anchor(self) -> Option<(f64, f64)> {
        Some(match self {
            Gravity::Center => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::Northeast => (1.0, 0.0),
            Gravity::East => (1.0, 0.5),
            Gravity::Southeast => (1.0, 1.0),
            Gravity::South => (0.5, 1.0),
            Gravity::Southwest => (0.0, 1.0),
            Gravity::West => (0.0, 0.5),
            Gravity::Northwest => (0.0, 0.0),
            Gravity::Smart => return None,
        })
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Pick the best format the client accepts (see [`Options::accept`]): AVIF, then WebP,
    /// then PNG for images with transparency or `lossless`, else JPEG (default).
    #[default]
    Auto,
    /// JPEG (mozjpeg).
    Jpeg,
    /// PNG (optimised with oxipng).
    Png,
    /// WebP, lossy or lossless.
    Webp,
    /// AVIF (rav1e).
    Avif,
}

/// A concrete output format, after `auto` has been resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
    /// GIF: only chosen by `format=auto` for an animated GIF, which stays an animated GIF.
    Gif,
}

impl OutputFormat {
    /// The IANA media type, e.g. `image/webp`.
    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Gif => "gif",
        }
    }
}

/// What happens to an embedded ICC colour profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IccMode {
    /// Convert the pixels to sRGB and drop the profile (default; what browsers assume).
    #[default]
    Srgb,
    /// Leave the pixels as they are and embed the original profile in the output (JPEG, PNG
    /// and WebP; AVIF output is converted to sRGB because the encoder cannot carry it).
    Keep,
}

/// Chroma subsampling of lossy JPEG and AVIF output (lossy WebP is always 4:2:0, the only
/// layout its format has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Chroma {
    /// 4:2:0 below quality 90 and 4:4:4 from 90 up, as libvips does; AVIF with transparency
    /// keeps 4:4:4, because such images are mostly graphics with hard colour edges (default).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Colour at half resolution both ways: the smallest files, fine for photographs.
    #[serde(rename = "420", alias = "4:2:0")]
    Cs420,
    /// Colour at full resolution: for graphics, text on colour and high qualities.
    #[serde(rename = "444", alias = "4:4:4")]
    Cs444,
}

impl Chroma {
    /// Whether chroma is subsampled, for an output at `quality` with or without alpha.
    pub(crate) fn subsampled(self, quality: u8, alpha: bool, format: OutputFormat) -> bool {
        match self {
            Chroma::Cs420 => true,
            Chroma::Cs444 => false,
            Chroma::Auto => quality < 90 && !(alpha && format == OutputFormat::Avif),
        }
    }
}

/// Rotation applied after EXIF auto-orientation, clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// No rotation (default).
    #[default]
    None,
    /// 90° clockwise.
    Cw90,
    /// 180°.
    Cw180,
    /// 270° clockwise (90° counter-clockwise).
    Cw270,
}

impl Rotation {
    /// Degrees clockwise: 0, 90, 180 or 270.
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }

    /// Parses 0/90/180/270; negative values and multiples of 360 are normalised.
    pub fn from_degrees(deg: i64) -> Result<Self> {
        match deg.rem_euclid(360) {
            0 if deg % 90 == 0 => Ok(Rotation::None),
            90 => Ok(Rotation::Cw90),
            180 => Ok(Rotation::Cw180),
            270 => Ok(Rotation::Cw270),
            _ => Err(Error::invalid(format!(
                "rotate must be a multiple of 90 degrees, got {deg}"
            ))),
        }
    }
}

impl Serialize for Rotation {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u16(self.degrees())
    }
}

impl<'de> Deserialize<'de> for Rotation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let deg = i64::deserialize(d)?;
        Rotation::from_degrees(deg).map_err(serde::de::Error::custom)
    }
}

/// An sRGB colour with alpha; written as `#rrggbb`, `#rrggbbaa`, `rgb` hex shorthand or one
/// of `white`, `black`, `transparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Alpha (255 = opaque).
    pub a: u8,
}

impl Color {
    /// Opaque white, the default background for flattening transparency.
    pub const WHITE: Color = Color {
        r: 255,
        g: 255,
        b: 255,
        a: 255,
    };
    /// Fully transparent black, the default padding for formats with alpha.
    pub const TRANSPARENT: Color = Color {
        r: 0,
        g: 0,
        b: 0,
        a: 0,
    };
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02x}", self.a)?;
        }
        Ok(())
    }
}

impl FromStr for Color {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "background must be a hex colour like #ff8800 or #ff880080, or white/black/transparent; got {s:?}"
            ))
        };
        match s.to_ascii_lowercase().as_str() {
            "white" => return Ok(Color::WHITE),
            "black" => {
                return Ok(Color {
                    r: 0,
                    g: 0,
                    b: 0,
                    a: 255,
                });
            }
            "transparent" => return Ok(Color::TRANSPARENT),
            _ => {}
        }
        let hex = s.strip_prefix('#').unwrap_or(s);
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        let nib = |i: usize| {
            u8::from_str_radix(&hex[i..i + 1], 16)
                .map(|v| v * 17)
                .map_err(|_| bad())
        };
        match hex.len() {
            3 => Ok(Color {
                r: nib(0)?,
                g: nib(1)?,
                b: nib(2)?,
                a: 255,
            }),
            6 => Ok(Color {
                r: byte(0)?,
                g: byte(2)?,
                b: byte(4)?,
                a: 255,
            }),
            8 => Ok(Color {
                r: byte(0)?,
                g: byte(2)?,
                b: byte(4)?,
                a: byte(6)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A rectangle in the (auto-oriented) source image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width, at least 1.
    pub width: u32,
    /// Height, at least 1.
    pub height: u32,
}

impl FromStr for CropRect {
    type Err = Error;

    /// Parses `x,y,width,height`.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
        match nums.as_deref() {
            Some(&[x, y, width, height]) => Ok(CropRect {
                x,
                y,
                width,
                height,
            }),
            _ => Err(Error::invalid(format!(
                "crop must be four non-negative integers x,y,width,height; got {s:?}"
            ))),
        }
    }
}

/// Everything a caller can ask of [`crate::process`]. Every field has a default, so
/// `Options::default()` re-encodes the image as-is (auto-oriented, metadata stripped).
///
/// The same struct is filled from CLI flags, from a URL query ([`Options::from_query`]) and
/// from a JSON body (serde, unknown fields refused); [`Options::validate`] explains what is
/// wrong in words a user understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Target width in pixels (query `w`).
    pub width: Option<u32>,
    /// Target height in pixels (query `h`).
    pub height: Option<u32>,
    /// How to fit into width × height (query `fit`; default `inside`).
    pub fit: Fit,
    /// What to keep when cropping for `cover`, or where to place for `contain` (query `gravity`/`g`).
    pub gravity: Gravity,
    /// Allow the output to be larger than the source (query `enlarge`; default false, because
    /// upscaling adds bytes but no detail).
    pub enlarge: bool,
    /// Crop this rectangle of the auto-oriented source first (query `crop=x,y,w,h`).
    pub crop: Option<CropRect>,
    /// Rotate clockwise after auto-orientation (query `rotate`; 0, 90, 180 or 270).
    pub rotate: Rotation,
    /// Mirror vertically, upside down (query `flip`).
    pub flip: bool,
    /// Mirror horizontally, left to right (query `flop`).
    pub flop: bool,
    /// Colour for flattening transparency into JPEG and for `contain` padding (query `bg`).
    /// Default: white when flattening, transparent padding when the format has alpha.
    pub background: Option<Color>,
    /// Gaussian blur sigma, 0.3 to 1000 (query `blur`).
    pub blur: Option<f32>,
    /// Unsharp-mask sigma, 0.3 to 100 (query `sharpen`).
    pub sharpen: Option<f32>,
    /// Output format (query `format`/`f`; default `auto`).
    pub format: Format,
    /// Quality 1-100 for lossy formats (query `q`; default 80 for JPEG and WebP, 60 for AVIF).
    pub quality: Option<u8>,
    /// Lossless WebP, or PNG when `format=auto` and WebP is not accepted (query `lossless`).
    pub lossless: bool,
    /// Progressive JPEG / interlaced PNG (query `progressive`; default false, as in sharp
    /// and libvips: progressive JPEGs are ~5% smaller but take ~25% longer to encode).
    pub progressive: Option<bool>,
    /// CPU effort 0 (fastest) to 9 (smallest output) (query `effort`; default 4). Maps to the
    /// WebP method, the AVIF speed and the oxipng level.
    pub effort: Option<u8>,
    /// Chroma subsampling for JPEG and AVIF (query `chroma`: `auto`, `420` or `444`; default
    /// `auto`, see [`Chroma`]).
    pub chroma: Chroma,
    /// mozjpeg trellis quantisation (query `trellis`; default false): ~15% smaller JPEGs at
    /// the same quality setting, but no gain at equal SSIM and ~50 ms more per 800 px image,
    /// so it is opt-in.
    pub trellis: bool,
    /// JPEG shrink-on-decode straight to the target size (query `fast_shrink`; default
    /// false). By default the decoder leaves the Lanczos3 step room to filter out the
    /// aliasing of the reduced IDCT: it stops at 2× the target at 1/8 and 1/4 scale and at
    /// 1.5× at 3/8.
    pub fast_shrink: bool,
    /// Lossless PNG reductions to a palette / fewer bits when the image allows it (query
    /// `palette`; default true). No lossy quantiser is used.
    pub palette: bool,
    /// Keep EXIF metadata and the ICC profile (query `metadata=keep`; default strip). GPS
    /// tags are still removed unless `keep_gps` is also set.
    pub keep_metadata: bool,
    /// Keep GPS position tags too (query `keep_gps`; needs `keep_metadata`).
    pub keep_gps: bool,
    /// ICC profile handling (query `icc`; default `srgb`).
    pub icc: IccMode,
    /// The client's `Accept` header, used by `format=auto`. Set by the HTTP layer, never
    /// read from the query or the JSON body.
    #[serde(skip)]
    pub accept: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            width: None,
            height: None,
            fit: Fit::default(),
            gravity: Gravity::default(),
            enlarge: false,
            crop: None,
            rotate: Rotation::None,
            flip: false,
            flop: false,
            background: None,
            blur: None,
            sharpen: None,
            format: Format::Auto,
            quality: None,
            lossless: false,
            progressive: None,
            effort: None,
            chroma: Chroma::Auto,
            trellis: false,
            fast_shrink: false,
            palette: true,
            keep_metadata: false,
            keep_gps: false,
            icc: IccMode::Srgb,
            accept: None,
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(format!(
            "{key} must be true or false; got {v:?}"
        ))),
    }
}

fn parse_num<T: FromStr>(key: &str, v: &str, what: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{key} must be {what}; got {v:?}")))
}

fn parse_word<T: serde::de::DeserializeOwned>(key: &str, v: &str, allowed: &str) -> Result<T> {
    // The enums already know their lowercase names through serde; reuse that instead of a
    // second table that could drift.
    let lower = v.to_ascii_lowercase();
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(&lower))
        .map_err(|_| Error::invalid(format!("{key} must be one of {allowed}; got {v:?}")))
}

const QUERY_KEYS: &str = "w, h, fit, gravity, enlarge, crop, rotate, flip, flop, bg, blur, sharpen, format, q, lossless, progressive, effort, chroma, trellis, fast_shrink, palette, metadata, keep_gps, icc";

impl Options {
    /// Parses URL query syntax, e.g. `w=800&h=600&fit=cover&format=webp&q=80`.
    ///
    /// Long names (`width`, `quality`, `background`, …) are accepted too. Unknown keys, bad
    /// values and repeated keys are errors that name the key, and the result is validated.
    pub fn from_query(query: &str) -> Result<Self> {
        let mut o = Options::default();
        let mut seen = std::collections::HashSet::new();
        let query = query.strip_prefix('?').unwrap_or(query);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let key = key.trim().to_ascii_lowercase();
            let v = value.trim();
            let canonical = match key.as_str() {
                "w" | "width" => "w",
                "h" | "height" => "h",
                "g" | "gravity" => "gravity",
                "bg" | "background" => "bg",
                "f" | "fmt" | "format" => "format",
                "q" | "quality" => "q",
                "metadata" | "keep_metadata" => "metadata",
                "r" | "rotate" => "rotate",
                other => other,
            }
            .to_owned();
            if !seen.insert(canonical.clone()) {
                return Err(Error::invalid(format!("{key} is given more than once")));
            }
            match canonical.as_str() {
                "w" => o.width = Some(parse_num(&key, v, "a positive whole number of pixels")?),
                "h" => o.height = Some(parse_num(&key, v, "a positive whole number of pixels")?),
                "fit" => o.fit = parse_word(&key, v, "cover, contain, fill, inside, outside")?,
                "gravity" => {
                    o.gravity = parse_word(
                        &key,
                        v,
                        "center, north, northeast, east, southeast, south, southwest, west, northwest, smart",
                    )?
                }
                "enlarge" => o.enlarge = parse_bool(&key, v)?,
                "crop" => o.crop = Some(v.parse()?),
                "rotate" => {
                    o.rotate = Rotation::from_degrees(parse_num(&key, v, "0, 90, 180 or 270")?)?
                }
                "flip" => o.flip = parse_bool(&key, v)?,
                "flop" => o.flop = parse_bool(&key, v)?,
                "bg" => o.background = Some(v.parse()?),
                "blur" => o.blur = Some(parse_num(&key, v, "a number (sigma)")?),
                "sharpen" => o.sharpen = Some(parse_num(&key, v, "a number (sigma)")?),
                "format" => {
                    let v = if v.eq_ignore_ascii_case("jpg") {
                        "jpeg"
                    } else {
                        v
                    };
                    o.format = parse_word(&key, v, "auto, jpeg, png, webp, avif")?
                }
                "q" => o.quality = Some(parse_num(&key, v, "a whole number from 1 to 100")?),
                "lossless" => o.lossless = parse_bool(&key, v)?,
                "progressive" | "interlace" => o.progressive = Some(parse_bool(&key, v)?),
                "effort" => o.effort = Some(parse_num(&key, v, "a whole number from 0 to 9")?),
                "chroma" => o.chroma = parse_word(&key, v, "auto, 420, 444")?,
                "trellis" => o.trellis = parse_bool(&key, v)?,
                "fast_shrink" => o.fast_shrink = parse_bool(&key, v)?,
                "palette" => o.palette = parse_bool(&key, v)?,
                "metadata" => {
                    o.keep_metadata = match v.to_ascii_lowercase().as_str() {
                        "keep" => true,
                        "strip" => false,
                        _ => parse_bool(&key, v).map_err(|_| {
                            Error::invalid(format!("{key} must be keep or strip; got {v:?}"))
                        })?,
                    }
                }
                "keep_gps" => o.keep_gps = parse_bool(&key, v)?,
                "icc" => o.icc = parse_word(&key, v, "srgb, keep")?,
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown option {key:?}; known options are {QUERY_KEYS}"
                    )));
                }
            }
        }
        o.validate()?;
        Ok(o)
    }

    /// Checks the options on their own (limits that depend on the image are checked by
    /// [`crate::process`]). The message names the offending option.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if v == Some(0) {
                return Err(Error::invalid(format!("{name} must be at least 1 pixel")));
            }
        }
        if let Some(q) = self.quality
            && !(1..=100).contains(&q)
        {
            return Err(Error::invalid(format!(
                "quality must be from 1 to 100; got {q}"
            )));
        }
        if let Some(e) = self.effort
            && e > 9
        {
            return Err(Error::invalid(format!(
                "effort must be from 0 to 9; got {e}"
            )));
        }
        if let Some(s) = self.blur
            && !(0.3..=1000.0).contains(&s)
        {
            return Err(Error::invalid(format!(
                "blur must be a sigma from 0.3 to 1000; got {s}"
            )));
        }
        if let Some(s) = self.sharpen
            && !(0.3..=100.0).contains(&s)
        {
            return Err(Error::invalid(format!(
                "sharpen must be a sigma from 0.3 to 100; got {s}"
            )));
        }
        if let Some(c) = self.crop
            && (c.width == 0 || c.height == 0)
        {
            return Err(Error::invalid(
                "crop width and height must be at least 1 pixel",
            ));
        }
        if self.lossless && matches!(self.format, Format::Jpeg | Format::Avif) {
            return Err(Error::invalid(
                "lossless is available for png and webp (or auto), not jpeg or avif",
            ));
        }
        if self.keep_gps && !self.keep_metadata {
            return Err(Error::invalid(
                "keep_gps needs keep_metadata (metadata=keep)",
            ));
        }
        Ok(())
    }

    /// Resolves `auto` to a concrete format, given whether the image has transparency.
    pub fn output_format(&self, has_alpha: bool) -> OutputFormat {
        match self.format {
            Format::Jpeg => OutputFormat::Jpeg,
            Format::Png => OutputFormat::Png,
            Format::Webp => OutputFormat::Webp,
            Format::Avif => OutputFormat::Avif,
            Format::Auto => {
                let accept = self.accept.as_deref().unwrap_or("");
                if !self.lossless && accepts(accept, "image/avif") {
                    OutputFormat::Avif
                } else if accepts(accept, "image/webp") {
                    OutputFormat::Webp
                } else if has_alpha || self.lossless {
                    OutputFormat::Png
                } else {
                    OutputFormat::Jpeg
                }
            }
        }
    }

    /// Quality for a lossy format, with the per-format default.
    pub(crate) fn quality_for(&self, f: OutputFormat) -> u8 {
        self.quality.unwrap_or(match f {
            OutputFormat::Avif => 60,
            _ => 80,
        })
    }

    pub(crate) fn effort(&self) -> u8 {
        self.effort.unwrap_or(4)
    }
}

/// Whether an `Accept` header value lists `mime` with a non-zero q (a bare `*/*` does not
/// count: browsers send it for everything, including ones that cannot show AVIF).
pub fn accepts(accept: &str, mime: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';');
        let ty = it.next().unwrap_or("").trim();
        if !ty.eq_ignore_ascii_case(mime) {
            return false;
        }
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        q > 0.0
    })
}
