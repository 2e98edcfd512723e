//! A bound template → takumi's node tree, styled with CSS generated from validated values.
//!
//! Only values that passed [`crate::validate`] reach the CSS strings here (numbers, checked
//! colours, keywords), so template text can never inject a declaration.

use std::fmt::Write as _;
use std::str::FromStr;

use takumi::prelude::{ImageData, ImageSource, ImageSourceInput, Node, RgbaImage, Style, Viewport};

use crate::error::{Error, Result};
use crate::fonts::FontLibrary;
use crate::template::{
    Align, Barcode, Direction, Edges, FitMode, Frame, Image, ImageFit, Layer, LayerKind, Layout,
    Length, Paint, Qr, Shape, ShapeKind, Template, Text, TextAlign, VerticalAlign,
};

/// Image pixels or SVG for each image layer, resolved before compiling.
pub(crate) trait ImageLookup {
    /// The decoded source for an image layer's `src`, to be drawn into a box of `box_px`
    /// device pixels (when the layer's size is in pixels) by `fit`; `filtered` when the layer
    /// has a CSS filter (grayscale, blur).
    fn image(
        &self,
        layer: &str,
        src: &str,
        box_px: Option<(u32, u32)>,
        fit: ImageFit,
        filtered: bool,
    ) -> Result<ImageSourceInput>;
}

pub(crate) struct Compiler<'a> {
    pub fonts: &'a FontLibrary,
    pub images: &'a dyn ImageLookup,
    /// Device pixels per CSS pixel, for sizing decoded images.
    pub scale: f32,
}

fn style(css: &str) -> Result<Style> {
    Style::from_str(css).map_err(|e| Error::Render(format!("generated CSS rejected: {e:?}")))
}

fn px(v: f32) -> String {
    // Rounded so float noise never changes the bytes of a deterministic render.
    let v = (v * 1000.0).round() / 1000.0;
    format!("{v}px")
}

fn length_css(l: &Length) -> String {
    match l {
        Length::Px(v) => px(*v),
        Length::Keyword(k) => k.trim().to_owned(),
    }
}

fn paint_css(p: &Paint) -> String {
    match p {
        Paint::Color(c) => format!("background-color:{};", c.trim()),
        Paint::Linear { linear: g } => {
            format!(
                "background-image:linear-gradient({}deg,{});",
                g.angle,
                stops_css(&g.stops)
            )
        }
        Paint::Radial { radial: g } => {
            format!(
                "background-image:radial-gradient(circle,{});",
                stops_css(&g.stops)
            )
        }
    }
}

fn stops_css(stops: &[crate::template::Stop]) -> String {
    let n = stops.len().max(2) - 1;
    stops
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = s.at.unwrap_or(i as f32 / n as f32) * 100.0;
            format!("{} {at}%", s.color.trim())
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn align_css(a: Align) -> &'static str {
    match a {
        Align::Start => "flex-start",
        Align::Center => "center",
        Align::End => "flex-end",
        Align::Stretch => "stretch",
        Align::SpaceBetween => "space-between",
        Align::SpaceAround => "space-around",
    }
}

/// Whether the first strong character of `s` is right-to-left (Hebrew, Arabic, Syriac, Thaana,
/// N'Ko and their presentation forms), as `dir="auto"` decides.
fn starts_rtl(s: &str) -> bool {
    for c in s.chars() {
        let u = c as u32;
        if (0x0590..=0x08FF).contains(&u)
            || (0xFB1D..=0xFDFF).contains(&u)
            || (0xFE70..=0xFEFF).contains(&u)
        {
            return true;
        }
        if c.is_alphabetic() {
            return false;
        }
    }
    false
}

impl Compiler<'_> {
    /// The root node and the viewport for a template.
    pub fn page(&self, t: &Template) -> Result<(Node, Viewport)> {
        let mut css = format!(
            "display:flex;position:relative;overflow:hidden;width:{}px;height:{}px;",
            t.page.width, t.page.height
        );
        if let Some(bg) = &t.page.background {
            css.push_str(&paint_css(bg));
        }
        let children = self.children(&t.layers, Layout::Absolute)?;
        let root = Node::container(children).with_style(style(&css)?);
        // The viewport is in device pixels; CSS pixels are scaled by the ratio.
        let device = |v: u32| (v as f32 * self.scale).round() as u32;
        let viewport = Viewport::new((device(t.page.width), device(t.page.height)))
            .with_device_pixel_ratio(self.scale);
        Ok((root, viewport))
    }

    fn children(&self, layers: &[Layer], parent: Layout) -> Result<Vec<Node>> {
        layers
            .iter()
            .filter(|l| !l.common.hidden)
            .map(|l| self.layer(l, parent))
            .collect()
    }

    /// Placement CSS from the common fields, for a child of a `parent` layout.
    fn placement(&self, layer: &Layer, parent: Layout) -> String {
        let c = &layer.common;
        let mut css = String::new();
        if parent == Layout::Absolute {
            let _ = write!(
                css,
                "position:absolute;left:{};top:{};",
                px(c.x.unwrap_or(0.0)),
                px(c.y.unwrap_or(0.0))
            );
        } else {
            css.push_str("position:relative;flex-shrink:0;");
        }
        if let Some(w) = &c.width {
            let _ = write!(css, "width:{};", length_css(w));
        }
        if let Some(h) = &c.height {
            let _ = write!(css, "height:{};", length_css(h));
        }
        if let Some(g) = c.grow {
            let _ = write!(css, "flex-grow:{g};");
        }
        if let Some(r) = c.rotation {
            let _ = write!(css, "transform:rotate({r}deg);");
        }
        if let Some(o) = c.opacity {
            let _ = write!(css, "opacity:{o};");
        }
        css
    }

    fn layer(&self, layer: &Layer, parent: Layout) -> Result<Node> {
        let place = self.placement(layer, parent);
        match &layer.kind {
            LayerKind::Frame(f) => self.frame(f, place),
            LayerKind::Group(g) => {
                let css = format!("{place}display:flex;");
                Ok(
                    Node::container(self.children(&g.children, Layout::Absolute)?)
                        .with_style(style(&css)?),
                )
            }
            LayerKind::Text(t) => self.text(layer, t, place),
            LayerKind::Image(i) => self.image(layer, i, place),
            LayerKind::Shape(s) => self.shape(layer, s, place),
            LayerKind::Svg(s) => svg_node(&layer.common.name, &s.svg, &place),
            LayerKind::Qr(q) => self.qr(layer, q, &place),
            LayerKind::Barcode(b) => self.barcode(layer, b, &place),
        }
    }

    fn frame(&self, f: &Frame, place: String) -> Result<Node> {
        let mut css = place;
        match f.layout {
            Layout::Absolute => css.push_str("display:flex;"),
            Layout::Row => css.push_str("display:flex;flex-direction:row;"),
            Layout::Column => css.push_str("display:flex;flex-direction:column;"),
            Layout::Grid => {
                let _ = write!(
                    css,
                    "display:grid;grid-template-columns:repeat({},1fr);",
                    f.columns.unwrap_or(2)
                );
            }
        }
        if let Some(g) = f.gap {
            let _ = write!(css, "gap:{};", px(g));
        }
        match &f.padding {
            Some(Edges::All(v)) => {
                let _ = write!(css, "padding:{};", px(*v));
            }
            Some(Edges::Sides([t, r, b, l])) => {
                let _ = write!(css, "padding:{} {} {} {};", px(*t), px(*r), px(*b), px(*l));
            }
            None => {}
        }
        if let Some(j) = f.justify {
            let _ = write!(css, "justify-content:{};", align_css(j));
        }
        if let Some(a) = f.align {
            let _ = write!(css, "align-items:{};", align_css(a));
        }
        if let Some(bg) = &f.background {
            css.push_str(&paint_css(bg));
        }
        if let Some(b) = &f.border {
            let _ = write!(css, "border:{} solid {};", px(b.width), b.color.trim());
        }
        if let Some(r) = f.radius {
            let _ = write!(css, "border-radius:{};", px(r));
        }
        if let Some(s) = &f.shadow {
            let _ = write!(
                css,
                "box-shadow:{} {} {} {} {};",
                px(s.x),
                px(s.y),
                px(s.blur),
                px(s.spread),
                s.color.trim()
            );
        }
        if f.clip {
            css.push_str("overflow:hidden;");
        }
        Ok(Node::container(self.children(&f.children, f.layout)?).with_style(style(&css)?))
    }

    /// The CSS of a text layer's glyphs at `size`.
    fn text_css(&self, t: &Text, size: f32, rtl: bool) -> String {
        let mut css = format!(
            "font-family:{};font-size:{};line-height:{};",
            self.fonts.css_family_list(t.font.family.as_deref()),
            px(size),
            t.line_height.unwrap_or(1.2)
        );
        if let Some(w) = t.font.weight {
            let _ = write!(css, "font-weight:{w};");
        }
        if t.font.italic {
            css.push_str("font-style:italic;");
        }
        if let Some(l) = t.letter_spacing {
            let _ = write!(css, "letter-spacing:{};", px(l));
        }
        let _ = write!(
            css,
            "color:{};",
            t.color.as_deref().unwrap_or("#000").trim()
        );
        let align = match t.align {
            TextAlign::Start => "start",
            TextAlign::Center => "center",
            TextAlign::End => "end",
            TextAlign::Justify => "justify",
        };
        let _ = write!(css, "text-align:{align};");
        if rtl {
            css.push_str("direction:rtl;");
        }
        if t.uppercase {
            css.push_str("text-transform:uppercase;");
        }
        css
    }

    fn plain_text(t: &Text) -> String {
        t.text
            .clone()
            .unwrap_or_else(|| t.spans.iter().map(|s| s.text.as_str()).collect())
    }

    /// The glyph node(s) of a text layer at `size`, clamped to `lines` if given.
    fn text_node(&self, t: &Text, size: f32, lines: Option<(u32, bool)>) -> Result<Node> {
        let plain = Self::plain_text(t);
        let rtl = match t.direction {
            Direction::Auto => starts_rtl(&plain),
            Direction::Rtl => true,
            Direction::Ltr => false,
        };
        let mut css = self.text_css(t, size, rtl);
        css.push_str("width:100%;");
        if let Some((n, ellipsis)) = lines {
            let _ = write!(
                css,
                "overflow:hidden;line-clamp:{n}{};",
                if ellipsis { "" } else { " none" }
            );
        }
        let node = if t.spans.is_empty() || t.text.is_some() {
            Node::text(plain).with_style(style(&css)?)
        } else {
            let spans = t
                .spans
                .iter()
                .map(|s| {
                    let mut c = String::new();
                    if s.bold {
                        c.push_str("font-weight:700;");
                    }
                    if s.italic {
                        c.push_str("font-style:italic;");
                    }
                    if s.underline {
                        c.push_str("text-decoration:underline;");
                    }
                    if let Some(col) = &s.color {
                        let _ = write!(c, "color:{};", col.trim());
                    }
                    Ok(Node::text(s.text.clone()).with_style(style(&c)?))
                })
                .collect::<Result<Vec<_>>>()?;
            css.push_str("display:block;");
            Node::container(spans).with_style(style(&css)?)
        };
        Ok(match &t.lang {
            Some(l) => match takumi::prelude::Lang::parse(l) {
                Ok(lang) => node.with_lang(lang),
                Err(_) => node,
            },
            None => node,
        })
    }

    fn text(&self, layer: &Layer, t: &Text, place: String) -> Result<Node> {
        let mut css = place;
        css.push_str("display:flex;flex-direction:column;");
        let justify = match t.vertical_align {
            VerticalAlign::Top => "flex-start",
            VerticalAlign::Middle => "center",
            VerticalAlign::Bottom => "flex-end",
        };
        let _ = write!(css, "justify-content:{justify};");
        let box_w = match layer.common.width {
            Some(Length::Px(w)) => Some(w),
            _ => None,
        };
        let box_h = match layer.common.height {
            Some(Length::Px(h)) => Some(h),
            _ => None,
        };
        let line_h = t.line_height.unwrap_or(1.2);
        let lines_in_box = |size: f32| box_h.map(|h| ((h / (size * line_h)).floor() as u32).max(1));
        let (size, lines) = match t.fit {
            FitMode::Grow => {
                if box_h.is_some() {
                    // The height is a minimum: the box grows with the text.
                    css = css.replacen("height:", "min-height:", 1);
                }
                (t.size, t.max_lines.map(|n| (n, true)))
            }
            FitMode::Ellipsis | FitMode::Clip => {
                css.push_str("overflow:hidden;");
                let n = match (t.max_lines, lines_in_box(t.size)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (t.size, n.map(|n| (n, t.fit == FitMode::Ellipsis)))
            }
            FitMode::Shrink => {
                css.push_str("overflow:hidden;");
                let w = box_w.unwrap_or(t.size * 10.0);
                (
                    self.shrink_size(t, w, box_h)?,
                    t.max_lines.map(|n| (n, true)),
                )
            }
        };
        let inner = self.text_node(t, size, lines)?;
        Ok(Node::container([inner]).with_style(style(&css)?))
    }

    /// The largest size from `t.size` down to `t.min_size` at which the text fits the box: no
    /// line wider than it, no more lines than `max_lines`, no taller than its height. Sizes are
    /// searched in quarter pixels so the result, and the output bytes, are reproducible.
    fn shrink_size(&self, t: &Text, box_w: f32, box_h: Option<f32>) -> Result<f32> {
        let max_q = (t.size * 4.0).round() as u32;
        let min_q =
            ((t.min_size.unwrap_or((t.size / 4.0).max(6.0)).min(t.size)) * 4.0).round() as u32;
        let fits = |q: u32| -> Result<bool> {
            let size = q as f32 / 4.0;
            let node = self.text_node(t, size, None)?;
            let wrapper = Node::container([node]).with_style(style(&format!(
                "display:flex;flex-direction:column;width:{};",
                px(box_w)
            ))?);
            let opts = takumi::prelude::RenderOptions::builder()
                .viewport(Viewport::new((Some(box_w.ceil() as u32), None)))
                .node(wrapper)
                .fonts(&self.fonts.fonts)
                .build();
            let m = takumi::measure(opts).map_err(|e| Error::Render(e.to_string()))?;
            let mut runs = Vec::new();
            collect_runs(&m, &mut runs);
            let widest = runs.iter().map(|r| r.0).fold(0.0f32, f32::max);
            let mut ys: Vec<i64> = runs.iter().map(|r| (r.1 * 10.0) as i64).collect();
            ys.sort_unstable();
            ys.dedup();
            let line_count = ys.len() as u32;
            Ok(widest <= box_w + 0.5
                && box_h.is_none_or(|h| m.height <= h + 0.5)
                && t.max_lines.is_none_or(|n| line_count <= n))
        };
        if fits(max_q)? {
            return Ok(max_q as f32 / 4.0);
        }
        let (mut lo, mut hi) = (min_q, max_q);
        // Invariant: hi does not fit; lo is the answer unless a larger size fits.
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo as f32 / 4.0)
    }

    fn image(&self, layer: &Layer, i: &Image, place: String) -> Result<Node> {
        let box_px = match (&layer.common.width, &layer.common.height) {
            (Some(Length::Px(w)), Some(Length::Px(h))) => Some((
                (w * self.scale).ceil() as u32,
                (h * self.scale).ceil() as u32,
            )),
            _ => None,
        };
        let src = self.images.image(
            &layer.common.name,
            i.src.trim(),
            box_px,
            i.fit,
            i.grayscale || i.blur.is_some(),
        )?;
        let mut css = place;
        let fit = match i.fit {
            ImageFit::Cover => "cover",
            ImageFit::Contain => "contain",
            ImageFit::Fill => "fill",
        };
        let _ = write!(css, "object-fit:{fit};");
        if let Some(f) = i.focal {
            let _ = write!(css, "object-position:{}% {}%;", f.x * 100.0, f.y * 100.0);
        }
        if let Some(r) = i.radius {
            let _ = write!(css, "border-radius:{};overflow:hidden;", px(r));
        }
        let mut filters = String::new();
        if i.grayscale {
            filters.push_str("grayscale(1) ");
        }
        if let Some(b) = i.blur {
            let _ = write!(filters, "blur({}) ", px(b));
        }
        if !filters.is_empty() {
            let _ = write!(css, "filter:{};", filters.trim_end());
        }
        Ok(Node::image(ImageData {
            src,
            width: None,
            height: None,
        })
        .with_style(style(&css)?))
    }

    fn shape(&self, layer: &Layer, s: &Shape, place: String) -> Result<Node> {
        let mut css = place;
        match s.shape {
            ShapeKind::Rect | ShapeKind::Ellipse => {
                if let Some(fill) = &s.fill {
                    css.push_str(&paint_css(fill));
                }
                if let Some(b) = &s.stroke {
                    let _ = write!(css, "border:{} solid {};", px(b.width), b.color.trim());
                }
                if s.shape == ShapeKind::Ellipse {
                    css.push_str("border-radius:50%;");
                } else if let Some(r) = s.radius {
                    let _ = write!(css, "border-radius:{};", px(r));
                }
                Ok(Node::container(Vec::<Node>::new()).with_style(style(&css)?))
            }
            ShapeKind::Line | ShapeKind::Path => {
                let (w, h) = match (&layer.common.width, &layer.common.height) {
                    (Some(Length::Px(w)), Some(Length::Px(h))) => (*w, *h),
                    _ => (1.0, 1.0),
                };
                let (defs, fill) = svg_paint(s.fill.as_ref());
                let stroke = s.stroke.as_ref().map_or(String::new(), |b| {
                    format!(r#" stroke="{}" stroke-width="{}""#, b.color.trim(), b.width)
                });
                let body = if s.shape == ShapeKind::Line {
                    let sw = s.stroke.as_ref().map_or(1.0, |b| b.width);
                    let stroke = if stroke.is_empty() {
                        format!(
                            r#" stroke="{}" stroke-width="{sw}""#,
                            solid_of(s.fill.as_ref())
                        )
                    } else {
                        stroke
                    };
                    // A box as tall as the stroke draws a horizontal rule.
                    if h <= sw {
                        format!(
                            r#"<line x1="0" y1="{}" x2="{w}" y2="{}"{stroke}/>"#,
                            h / 2.0,
                            h / 2.0
                        )
                    } else {
                        format!(r#"<line x1="0" y1="0" x2="{w}" y2="{h}"{stroke}/>"#)
                    }
                } else {
                    format!(
                        r#"<path d="{}" fill="{fill}"{stroke}/>"#,
                        s.d.as_deref().unwrap_or_default()
                    )
                };
                let svg = format!(
                    r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{defs}{body}</svg>"#
                );
                svg_node(&layer.common.name, &svg, &css)
            }
        }
    }

    fn qr(&self, layer: &Layer, q: &Qr, place: &str) -> Result<Node> {
        let svg = crate::codes::qr_svg(
            &q.data,
            q.level,
            q.margin.unwrap_or(2),
            q.color.as_deref().unwrap_or("#000"),
            Some(q.background.as_deref().unwrap_or("#fff")),
        )
        .map_err(|reason| Error::Data(format!("layer {}: {reason}", layer.common.name)))?;
        svg_node(&layer.common.name, &svg, place)
    }

    fn barcode(&self, layer: &Layer, b: &Barcode, place: &str) -> Result<Node> {
        let svg = crate::codes::barcode_svg(
            b.symbology,
            &b.data,
            b.color.as_deref().unwrap_or("#000"),
            Some(b.background.as_deref().unwrap_or("#fff")),
        )
        .map_err(|reason| Error::Data(format!("layer {}: {reason}", layer.common.name)))?;
        svg_node(&layer.common.name, &svg, place)
    }
}

fn collect_runs(m: &takumi::prelude::MeasuredNode, out: &mut Vec<(f32, f32)>) {
    for r in &m.runs {
        out.push((r.x + r.width, r.y));
    }
    for c in &m.children {
        collect_runs(c, out);
    }
}

/// An SVG fill for a paint: (defs, fill attribute).
fn svg_paint(p: Option<&Paint>) -> (String, String) {
    match p {
        None => (String::new(), "none".to_owned()),
        Some(Paint::Color(c)) => (String::new(), c.trim().to_owned()),
        Some(Paint::Linear { linear: g }) | Some(Paint::Radial { radial: g }) => {
            let n = g.stops.len().max(2) - 1;
            let stops: String = g
                .stops
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        r#"<stop offset="{}" stop-color="{}"/>"#,
                        s.at.unwrap_or(i as f32 / n as f32),
                        s.color.trim()
                    )
                })
                .collect();
            let defs = if matches!(p, Some(Paint::Linear { .. })) {
                // SVG's default vector points right (CSS 90deg); CSS angles turn clockwise.
                format!(
                    r#"<defs><linearGradient id="f" gradientTransform="rotate({} 0.5 0.5)">{stops}</linearGradient></defs>"#,
                    g.angle - 90.0
                )
            } else {
                format!(r#"<defs><radialGradient id="f">{stops}</radialGradient></defs>"#)
            };
            (defs, "url(#f)".to_owned())
        }
    }
}

fn solid_of(p: Option<&Paint>) -> String {
    match p {
        Some(Paint::Color(c)) => c.trim().to_owned(),
        Some(Paint::Linear { linear: g }) | Some(Paint::Radial { radial: g }) => g
            .stops
            .first()
            .map_or("#000".to_owned(), |s| s.color.trim().to_owned()),
        None => "#000".to_owned(),
    }
}

fn svg_node(layer: &str, svg: &str, css: &str) -> Result<Node> {
    let source = ImageSource::from_bytes(svg.as_bytes()).map_err(|e| Error::Image {
        layer: layer.to_owned(),
        reason: format!("SVG could not be read: {e:?}"),
    })?;
    Ok(Node::image(ImageData {
        src: ImageSourceInput::Loaded(source),
        width: None,
        height: None,
    })
    .with_style(style(css)?))
}

/// Raw RGBA pixels as an image source (premultiplied once, shared by reference after).
pub(crate) fn rgba_source(px: pixeld_imaging::Rgba) -> Result<RgbaImage> {
    RgbaImage::new(px.data, px.width, px.height, false)
        .map_err(|e| Error::Render(format!("image buffer: {e:?}")))
}
