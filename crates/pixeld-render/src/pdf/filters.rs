//! Filtered SVG elements (blurred box shadows, CSS filters on images) as pixels for the PDF.
//!
//! PDF has no filters. svg2pdf rasterises filtered groups with resvg, but only behind its
//! `filters` feature, which brings a second tiny-skia, png, gif, zune-jpeg and bitflags into the
//! build; without it a filtered group is drawn unfiltered, so a soft box shadow becomes a hard
//! dark shape. takumi rasterises SVG itself, filters included, so here each outermost filtered
//! element of takumi's SVG is drawn alone over the region its filters cover (as svg2pdf would
//! with resvg) and replaced by that picture, in place: everything else stays vector.

use std::fmt::Write as _;

use base64::Engine as _;
use svg2pdf::usvg::{self, Group, Node, Transform, roxmltree};
use takumi::prelude::{Fonts, ImageData, ImageSource, ImageSourceInput, RenderOptions, Viewport};

use crate::error::{Error, Result};

/// Pixels per SVG unit (a device pixel) of the pictures: blurs are soft, but a filtered image
/// (grayscale, say) should stay as sharp in print as the raster render is on screen.
const OVERSAMPLE: f32 = 2.0;
/// The largest picture drawn for one element, in pixels; larger regions are drawn coarser.
const MAX_PIXELS: f32 = 16_000_000.0;

/// Elements that only define things others reference; copied into each element's picture.
const DEFINITIONS: [&str; 8] = [
    "defs",
    "clipPath",
    "mask",
    "filter",
    "linearGradient",
    "radialGradient",
    "pattern",
    "symbol",
];

/// `svg` with every outermost filtered element replaced by an `<image>` of it, drawn by takumi
/// over the part of its filter region on the `page` (width, height in SVG units). Unchanged
/// when nothing is filtered.
pub(crate) fn rasterise(
    svg: &str,
    options: &usvg::Options<'_>,
    page: (f32, f32),
    fonts: &Fonts,
) -> Result<String> {
    if !svg.contains("filter=") {
        return Ok(svg.to_owned());
    }
    let bad = |e: String| Error::Render(format!("PDF: the SVG could not be read: {e}"));
    let doc = roxmltree::Document::parse(svg).map_err(|e| bad(e.to_string()))?;
    let filtered: Vec<roxmltree::Node<'_, '_>> = doc
        .descendants()
        .filter(|n| {
            n.has_attribute("filter") && !n.ancestors().skip(1).any(|a| a.has_attribute("filter"))
        })
        .collect();
    if filtered.is_empty() {
        return Ok(svg.to_owned());
    }

    // Name each element so usvg, which computes the regions, can say which is which.
    let mut named = String::with_capacity(svg.len() + 32 * filtered.len());
    let mut names = Vec::new();
    let mut copied = 0;
    for (i, node) in filtered.iter().enumerate() {
        let name = match node.attribute("id") {
            Some(id) => id.to_owned(),
            None => {
                let name = format!("pixeld-filtered-{i}");
                let after_tag = node.range().start + 1 + node.tag_name().name().len();
                named.push_str(&svg[copied..after_tag]);
                let _ = write!(named, r#" id="{name}""#);
                copied = after_tag;
                name
            }
        };
        names.push(name);
    }
    named.push_str(&svg[copied..]);
    let doc = roxmltree::Document::parse(&named).map_err(|e| bad(e.to_string()))?;
    let tree = usvg::Tree::from_str(&named, options).map_err(|e| bad(e.to_string()))?;
    let mut regions = Vec::new();
    groups(tree.root(), &mut regions);

    let definitions: String = doc
        .descendants()
        .filter(|n| {
            DEFINITIONS.contains(&n.tag_name().name())
                && !n.ancestors().skip(1).any(|a| {
                    DEFINITIONS.contains(&a.tag_name().name()) || a.has_attribute("filter")
                })
                && !n.has_attribute("filter")
        })
        .map(|n| &named[n.range()])
        .collect();

    let mut out = String::with_capacity(named.len());
    let mut copied = 0;
    for node in doc.descendants() {
        let Some(id) = node.attribute("id") else {
            continue;
        };
        if !names.iter().any(|n| n == id) {
            continue;
        }
        let Some((_, region, parent)) = regions.iter().find(|(n, ..)| n == id) else {
            // usvg dropped it (nothing to draw): so does the PDF.
            out.push_str(&named[copied..node.range().start]);
            copied = node.range().end;
            continue;
        };
        out.push_str(&named[copied..node.range().start]);
        copied = node.range().end;
        if let Some(on_page) = clip_to_page(*region, *parent, page) {
            let image = picture(&named[node.range()], &definitions, on_page, fonts)?;
            out.push_str(&image);
        }
    }
    out.push_str(&named[copied..]);
    Ok(out)
}

/// A rectangle: left, top, width, height.
type Rect = [f32; 4];

/// (id, filter region in the parent's units, the parent's transform to the page) of every
/// filtered group.
fn groups(group: &Group, out: &mut Vec<(String, Rect, Transform)>) {
    for child in group.children() {
        if let Node::Group(g) = child {
            if !g.filters().is_empty() {
                let b = g.layer_bounding_box();
                let mut r = [b.left(), b.top(), b.width(), b.height()];
                // A shadow's filter region is the whole page grown by the blur; its ink is the
                // shape grown by the blur's reach, a far smaller picture to draw.
                if let Some(reach) = reach(g) {
                    let c = g.stroke_bounding_box();
                    let ink = [
                        c.left() - reach,
                        c.top() - reach,
                        c.width() + 2.0 * reach,
                        c.height() + 2.0 * reach,
                    ];
                    r = intersect(r, ink).unwrap_or(ink);
                }
                out.push((
                    g.id().to_owned(),
                    bounds(g.transform(), r),
                    group.abs_transform(),
                ));
            } else {
                groups(g, out);
            }
        }
    }
}

/// How far the filters of `g` can move ink beyond its content, when every primitive is one
/// that only recolours, blurs, offsets or combines it (a flood, say, fills the whole region).
fn reach(g: &Group) -> Option<f32> {
    use usvg::filter::Kind;
    let mut reach = 1.0;
    for filter in g.filters() {
        for p in filter.primitives() {
            reach += match p.kind() {
                Kind::GaussianBlur(b) => 3.0 * b.std_dev_x().get().max(b.std_dev_y().get()),
                Kind::Offset(o) => o.dx().abs().max(o.dy().abs()),
                Kind::DropShadow(d) => {
                    3.0 * d.std_dev_x().get().max(d.std_dev_y().get())
                        + d.dx().abs().max(d.dy().abs())
                }
                Kind::ColorMatrix(_)
                | Kind::ComponentTransfer(_)
                | Kind::Composite(_)
                | Kind::Merge(_)
                | Kind::Blend(_) => 0.0,
                _ => return None,
            };
        }
    }
    Some(reach.ceil())
}

/// The overlap of two rectangles, if any.
fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let (l, t) = (a[0].max(b[0]), a[1].max(b[1]));
    let (r, bottom) = (
        (a[0] + a[2]).min(b[0] + b[2]),
        (a[1] + a[3]).min(b[1] + b[3]),
    );
    (r > l && bottom > t).then_some([l, t, r - l, bottom - t])
}

/// The axis-aligned bounds of `r` under `t`.
fn bounds(t: Transform, r: Rect) -> Rect {
    let [x, y, w, h] = r;
    let corners = [(x, y), (x + w, y), (x, y + h), (x + w, y + h)]
        .map(|(x, y)| (t.sx * x + t.kx * y + t.tx, t.ky * x + t.sy * y + t.ty));
    let (mut l, mut top, mut right, mut bottom) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for (x, y) in corners {
        l = l.min(x);
        top = top.min(y);
        right = right.max(x);
        bottom = bottom.max(y);
    }
    [l, top, right - l, bottom - top]
}

/// The part of `region` (in units whose transform to the page is `parent`) that can show on
/// the page, or `None` when it is all off the page.
fn clip_to_page(region: Rect, parent: Transform, page: (f32, f32)) -> Option<Rect> {
    let inverse = parent.invert()?;
    intersect(region, bounds(inverse, [0.0, 0.0, page.0, page.1]))
}

/// An `<image>` of `element` over `region`, drawn by takumi.
fn picture(element: &str, definitions: &str, region: Rect, fonts: &Fonts) -> Result<String> {
    let [x, y, w, h] = region;
    let mut k = OVERSAMPLE;
    if w * h * k * k > MAX_PIXELS {
        k = (MAX_PIXELS / (w * h)).sqrt();
    }
    let (pw, ph) = (
        ((w * k).ceil() as u32).max(1),
        ((h * k).ceil() as u32).max(1),
    );
    let alone = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{ph}" viewBox="{x} {y} {w} {h}" preserveAspectRatio="none"><defs>{definitions}</defs>{element}</svg>"#
    );
    let fail = |e: String| Error::Render(format!("PDF: a filtered element: {e}"));
    let source = ImageSource::from_bytes(alone.as_bytes()).map_err(|e| fail(format!("{e:?}")))?;
    let style = format!("width:{pw}px;height:{ph}px;");
    let node = takumi::prelude::Node::image(ImageData {
        src: ImageSourceInput::Loaded(source),
        width: None,
        height: None,
    })
    .with_style(std::str::FromStr::from_str(&style).map_err(|e| fail(format!("{e:?}")))?);
    let opts = RenderOptions::builder()
        .viewport(Viewport::new((pw, ph)))
        .node(node)
        .fonts(fonts)
        .build();
    let bitmap = takumi::render(opts).map_err(|e| fail(e.to_string()))?;
    let pixels = pixeld_imaging::Rgba {
        width: bitmap.width(),
        height: bitmap.height(),
        data: bitmap.into_raw(),
    };
    let opts = pixeld_imaging::Options {
        effort: Some(0),
        ..Default::default()
    };
    let png = pixeld_imaging::encode_rgba(pixels, pixeld_imaging::OutputFormat::Png, &opts)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(format!(
        r#"<image x="{x}" y="{y}" width="{w}" height="{h}" preserveAspectRatio="none" href="data:image/png;base64,{}"/>"#,
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}
