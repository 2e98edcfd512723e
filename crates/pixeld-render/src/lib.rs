//! pixeld's render engine: templates of named layers → PNG, JPEG, WebP, AVIF, SVG or PDF.
//!
//! A [`Template`] (versioned JSON, schema in `schema/template-v1.json`) is bound to data
//! (`{{variable}}` placeholders and Bannerbear-style [`Modification`]s), checked against
//! [`Limits`], laid out and rasterised by [takumi](https://docs.rs/takumi) with the bundled OFL
//! fonts, and encoded through `pixeld-imaging`. No I/O: image layers that point at URLs or
//! uploaded assets are fetched by the caller ([`Renderer::image_sources`]) and passed in.
//!
//! ```no_run
//! use pixeld_render::{Data, Input, Images, OutputOptions, Renderer, parse, Limits};
//! let renderer = Renderer::new()?;
//! let template = parse(br##"{"page":{"width":600,"height":300,"background":"#123"},
//!   "layers":[{"type":"text","name":"title","x":40,"y":40,"width":520,
//!              "text":"Hello {{name}}","size":48,"color":"white"}]}"##, &Limits::default())?;
//! let data = Data::from([("name".to_owned(), "world".to_owned())]);
//! let png = renderer.render(&template, Input { data: &data, modifications: &[], images: &Images::new() },
//!     &OutputOptions::default())?;
//! assert_eq!((png.width, png.height), (600, 300));
//! # Ok::<(), pixeld_render::Error>(())
//! ```

mod bind;
mod codes;
mod compile;
mod error;
mod fonts;
mod pdf;
mod render;
pub mod template;
mod validate;

pub use bind::{Data, Modification, data_from_json, fill_placeholders, placeholders};
pub use error::{Error, Result};
pub use fonts::{FontLibrary, MAX_FONT_BYTES};
pub use render::{Format, Images, Input, OutputOptions, Rendered, Renderer};
pub use template::{SCHEMA_VERSION, Template, json_schema};
pub use validate::{Limits, check, from_value, parse};
