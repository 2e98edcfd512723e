//! The template model: a page holding a tree of named layers (schema version 1).
//!
//! Templates are plain JSON (`deny_unknown_fields` everywhere, so a typo is an error, not a
//! silently ignored property). String properties may hold `{{variable}}` placeholders, filled
//! from the render data; see [`crate::fill_placeholders`]. The published JSON Schema is
//! generated from these types ([`json_schema`]) and kept in `schema/template-v1.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only template schema version this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A template: one page and its layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Schema version; `1`.
    #[serde(default = "schema_version")]
    pub schema: u32,
    /// Page size and background.
    pub page: Page,
    /// Declared variables (type hints, defaults, required). Placeholders that are not declared
    /// here are required.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Variable>,
    /// Layers, painted in order (later on top), placed absolutely on the page.
    pub layers: Vec<Layer>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// Page size, background and print resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Width in CSS pixels.
    pub width: u32,
    /// Height in CSS pixels.
    pub height: u32,
    /// Page background; transparent when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Paint>,
    /// Dots per inch used for PDF page size (72 = one CSS pixel per point).
    #[serde(default = "default_dpi")]
    pub dpi: u32,
}

fn default_dpi() -> u32 {
    72
}

/// A declared variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// What the variable is for (shown in the editor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Used when the data has no value; a variable with a default is never missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// A sample value for previews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// Longest accepted value, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// A fill: a colour (`#rgb`, `#rrggbb`, `#rrggbbaa`, `rgb()`, named) or a gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Paint {
    /// A CSS colour.
    Color(String),
    /// A linear gradient.
    Linear {
        /// The gradient.
        linear: Gradient,
    },
    /// A radial gradient (circle from the centre).
    Radial {
        /// The gradient.
        radial: Gradient,
    },
}

/// Gradient angle and colour stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gradient {
    /// Direction in degrees for linear gradients (0 = to top, 90 = to right).
    #[serde(default = "default_angle")]
    pub angle: f32,
    /// At least two stops.
    pub stops: Vec<Stop>,
}

fn default_angle() -> f32 {
    180.0
}

/// A gradient stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// A CSS colour.
    pub color: String,
    /// Position from 0 to 1; evenly spread when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f32>,
}

/// A length: pixels (a number), a percentage of the parent (`"50%"`) or `"auto"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Length {
    /// CSS pixels.
    Px(f32),
    /// `"50%"` or `"auto"`.
    Keyword(String),
}

/// Edge sizes: one number for all sides or `[top, right, bottom, left]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Edges {
    /// The same on every side.
    All(f32),
    /// Top, right, bottom, left.
    Sides([f32; 4]),
}

/// A border.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Border {
    /// Width in pixels.
    pub width: f32,
    /// A CSS colour.
    pub color: String,
}

/// A drop shadow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shadow {
    /// Horizontal offset in pixels.
    #[serde(default)]
    pub x: f32,
    /// Vertical offset in pixels.
    #[serde(default)]
    pub y: f32,
    /// Blur radius in pixels.
    #[serde(default)]
    pub blur: f32,
    /// Spread in pixels.
    #[serde(default)]
    pub spread: f32,
    /// A CSS colour.
    pub color: String,
}

/// How a frame places its children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Children at their `x`/`y`.
    #[default]
    Absolute,
    /// A horizontal flex row.
    Row,
    /// A vertical flex column.
    Column,
    /// A grid of `columns` equal columns.
    Grid,
}

/// Alignment along an axis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// Start of the axis.
    #[default]
    Start,
    /// Centre.
    Center,
    /// End of the axis.
    End,
    /// Stretch to fill (cross axis only).
    Stretch,
    /// Space between items (main axis only).
    SpaceBetween,
    /// Space around items (main axis only).
    SpaceAround,
}

/// Fields every layer has: its name and its box.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Unique name, used by `modifications` (letters, digits, `_`, `-`, `.`; 1–64).
    pub name: String,
    /// Left edge relative to the parent (absolute layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f32>,
    /// Top edge relative to the parent (absolute layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f32>,
    /// Width; the content's width when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<Length>,
    /// Height; the content's height when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<Length>,
    /// Flex grow factor inside a row/column frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grow: Option<f32>,
    /// Clockwise rotation in degrees, around the centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f32>,
    /// Opacity from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opacity: Option<f32>,
    /// Not painted (and takes no space) when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

/// One layer: a common box plus what it draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Layer {
    /// Name and box.
    #[serde(flatten)]
    pub common: Common,
    /// What the layer draws.
    #[serde(flatten)]
    pub kind: LayerKind,
}

/// The layer types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerKind {
    /// A box that lays out children: flex, grid or absolute; with fill, border, shadow.
    Frame(Frame),
    /// Children placed absolutely, with no box styling.
    Group(Group),
    /// Text.
    Text(Text),
    /// A raster or SVG image.
    Image(Image),
    /// A rectangle, ellipse, line or SVG path.
    Shape(Shape),
    /// Inline SVG markup.
    Svg(Svg),
    /// A QR code.
    Qr(Qr),
    /// A linear barcode.
    Barcode(Barcode),
}

/// A styled container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Frame {
    /// How children are placed.
    #[serde(default)]
    pub layout: Layout,
    /// Number of equal columns for `grid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u32>,
    /// Space between children in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<f32>,
    /// Inner padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<Edges>,
    /// Main-axis distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justify: Option<Align>,
    /// Cross-axis alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
    /// Fill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Paint>,
    /// Border.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border: Option<Border>,
    /// Corner radius in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f32>,
    /// Drop shadow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
    /// Clip children to the frame (and its radius).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clip: bool,
    /// Child layers.
    #[serde(default)]
    pub children: Vec<Layer>,
}

/// A plain group of absolutely placed children.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Group {
    /// Child layers.
    #[serde(default)]
    pub children: Vec<Layer>,
}

/// Font choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Font {
    /// Family: a bundled family (`Inter`, `Noto Serif`, `JetBrains Mono`, …), an alias
    /// (`sans`, `serif`, `mono`) or a font uploaded to the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Weight 100–900.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Italic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub italic: bool,
}

/// What happens when text does not fit its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FitMode {
    /// The box grows with the text (its height is ignored).
    #[default]
    Grow,
    /// The largest size (up to `size`, down to `min_size`) at which the text fits.
    Shrink,
    /// Cut at the box (or at `max_lines`) with an ellipsis.
    Ellipsis,
    /// Cut at the box.
    Clip,
}

/// Horizontal text alignment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextAlign {
    /// Start edge (left in LTR, right in RTL).
    #[default]
    Start,
    /// Centred.
    Center,
    /// End edge.
    End,
    /// Justified.
    Justify,
}

/// Vertical placement of text inside its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerticalAlign {
    /// Top.
    #[default]
    Top,
    /// Middle.
    Middle,
    /// Bottom.
    Bottom,
}

/// Text direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the first strong character.
    #[default]
    Auto,
    /// Left to right.
    Ltr,
    /// Right to left.
    Rtl,
}

/// A run of rich text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// The run's text.
    pub text: String,
    /// Bold (weight 700).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bold: bool,
    /// Italic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub italic: bool,
    /// Underlined.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub underline: bool,
    /// Colour of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A text layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Text {
    /// The text (plain). Either `text` or `spans`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Rich text runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
    /// Font family, weight, italic.
    #[serde(default)]
    pub font: Font,
    /// Font size in pixels (the largest size for `shrink`).
    #[serde(default = "default_size")]
    pub size: f32,
    /// Smallest size `shrink` may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<f32>,
    /// Line height as a multiple of the size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_height: Option<f32>,
    /// Extra space between letters in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter_spacing: Option<f32>,
    /// A CSS colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Horizontal alignment.
    #[serde(default)]
    pub align: TextAlign,
    /// Vertical alignment inside the box.
    #[serde(default)]
    pub vertical_align: VerticalAlign,
    /// At most this many lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u32>,
    /// What to do when the text does not fit.
    #[serde(default)]
    pub fit: FitMode,
    /// Writing direction.
    #[serde(default)]
    pub direction: Direction,
    /// BCP 47 language, for shaping and line breaking (`ar`, `he`, `hi`, `zh`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Upper-case the text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uppercase: bool,
}

fn default_size() -> f32 {
    32.0
}

/// How an image fills its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageFit {
    /// Fill the box, cropping the overflow around the focal point.
    #[default]
    Cover,
    /// Fit inside the box, letterboxed.
    Contain,
    /// Stretch to the box.
    Fill,
}

/// A point in an image, 0–1 on each axis (0.5, 0.5 is the centre).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Focal {
    /// Horizontal, 0 = left.
    pub x: f32,
    /// Vertical, 0 = top.
    pub y: f32,
}

/// An image layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Image {
    /// `https://…` URL, `asset:{id}` of an uploaded image, or a `data:` URI.
    pub src: String,
    /// How the image fills the box.
    #[serde(default)]
    pub fit: ImageFit,
    /// The point kept in view when cropping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal: Option<Focal>,
    /// Corner radius in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f32>,
    /// Grey-scale filter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grayscale: bool,
    /// Gaussian blur radius in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blur: Option<f32>,
}

/// Shape kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShapeKind {
    /// Rectangle (with `radius`).
    #[default]
    Rect,
    /// Ellipse filling the box.
    Ellipse,
    /// A line from the box's top-left to its bottom-right (a horizontal line when the height is
    /// the stroke width).
    Line,
    /// An SVG path (`d`) in the box's coordinates.
    Path,
}

/// A vector shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Shape {
    /// Which shape.
    #[serde(default)]
    pub shape: ShapeKind,
    /// Fill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Paint>,
    /// Outline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stroke: Option<Border>,
    /// Corner radius for `rect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f32>,
    /// Path data for `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
}

/// Inline SVG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Svg {
    /// The SVG document (`<svg …>…</svg>`).
    pub svg: String,
}

/// QR error correction level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum QrLevel {
    /// ~7 % recovery.
    L,
    /// ~15 % recovery.
    #[default]
    M,
    /// ~25 % recovery.
    Q,
    /// ~30 % recovery.
    H,
}

/// A QR code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Qr {
    /// The encoded text (often a URL).
    pub data: String,
    /// Error correction.
    #[serde(default)]
    pub level: QrLevel,
    /// Module colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Background colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// Quiet zone in modules (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<u32>,
}

/// Barcode symbologies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Symbology {
    /// Code 128 (any ASCII).
    #[default]
    Code128,
    /// EAN-13 (12 digits; the check digit is computed).
    Ean13,
    /// UPC-A (11 digits; the check digit is computed).
    UpcA,
}

/// A linear barcode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Barcode {
    /// Symbology.
    #[serde(default)]
    pub symbology: Symbology,
    /// The encoded value.
    pub data: String,
    /// Bar colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Background colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
}

impl Layer {
    /// Child layers of frames and groups.
    pub fn children(&self) -> &[Layer] {
        match &self.kind {
            LayerKind::Frame(f) => &f.children,
            LayerKind::Group(g) => &g.children,
            _ => &[],
        }
    }

    /// The type name as written in JSON.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            LayerKind::Frame(_) => "frame",
            LayerKind::Group(_) => "group",
            LayerKind::Text(_) => "text",
            LayerKind::Image(_) => "image",
            LayerKind::Shape(_) => "shape",
            LayerKind::Svg(_) => "svg",
            LayerKind::Qr(_) => "qr",
            LayerKind::Barcode(_) => "barcode",
        }
    }
}

impl Template {
    /// Every layer, depth first, with its depth (top-level layers at depth 1).
    pub fn walk(&self) -> Vec<(usize, &Layer)> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, &Layer)> = self.layers.iter().rev().map(|l| (1, l)).collect();
        while let Some((depth, layer)) = stack.pop() {
            out.push((depth, layer));
            stack.extend(layer.children().iter().rev().map(|c| (depth + 1, c)));
        }
        out
    }
}

/// The JSON Schema of [`Template`] (draft 2020-12), as published.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Template)).unwrap_or_default()
}
