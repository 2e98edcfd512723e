//! OpenAPI documentation of the processing options, as the query of `GET /v1/images/{id}/content`
//! and as the JSON body of `POST /v1/images/{id}/optimize`.
//!
//! These types are never parsed: the handlers parse with `pixeld_imaging::Options` (query:
//! `Options::from_query`, body: serde). They exist so that the published schema states the
//! same names, types, ranges and enumerations that parser accepts, and nothing more. Checks
//! that depend on the image itself (crop inside the image, output pixel limits) or on two options
//! together (`lossless` with jpeg/avif, `keep_gps` without `keep_metadata`) answer 422 naming the
//! option.
#![allow(dead_code)]

use utoipa::{IntoParams, ToSchema};

/// How to fit into width × height (default `inside`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FitDoc {
    /// Crop to fill the box.
    Cover,
    /// Letterbox inside the box.
    Contain,
    /// Stretch to the box.
    Fill,
    /// Fit inside, keeping the aspect ratio (default).
    Inside,
    /// Cover the box, keeping the aspect ratio.
    Outside,
}

/// What to keep when cropping for `cover`, or where to place for `contain` (default `center`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GravityDoc {
    /// Centre (default).
    Center,
    /// Top.
    North,
    /// Top right.
    Northeast,
    /// Right.
    East,
    /// Bottom right.
    Southeast,
    /// Bottom.
    South,
    /// Bottom left.
    Southwest,
    /// Left.
    West,
    /// Top left.
    Northwest,
    /// The most interesting region.
    Smart,
}

/// Output format in the query (`jpg` is an alias of `jpeg`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryFormatDoc {
    /// The best format the `Accept` header allows (default).
    Auto,
    /// JPEG.
    Jpeg,
    /// JPEG.
    Jpg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
}

/// Output format in a JSON body.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatDoc {
    /// The best format the `Accept` header allows (default).
    Auto,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
}

/// ICC profile handling (default `srgb`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IccDoc {
    /// Convert to sRGB (default).
    Srgb,
    /// Keep the embedded profile.
    Keep,
}

/// Chroma subsampling of JPEG and AVIF output (default `auto`: `420` below quality 90, `444`
/// from 90 up and for AVIF with transparency; lossy WebP is always 4:2:0).
#[derive(ToSchema)]
pub enum ChromaDoc {
    /// 4:2:0 below quality 90, 4:4:4 otherwise (default).
    #[serde(rename = "auto")]
    Auto,
    /// Colour at half resolution both ways: the smallest files.
    #[serde(rename = "420")]
    Cs420,
    /// Colour at full resolution: for graphics and text on colour.
    #[serde(rename = "444")]
    Cs444,
}

/// Keep or strip EXIF metadata and the ICC profile; the boolean words work too (an empty value
/// means keep, like a bare `?metadata`).
#[derive(ToSchema)]
pub enum MetadataDoc {
    /// Keep (GPS tags are still removed unless `keep_gps` is set).
    #[serde(rename = "keep")]
    Keep,
    /// Strip (default).
    #[serde(rename = "strip")]
    Strip,
    /// Keep.
    #[serde(rename = "true")]
    True,
    /// Strip.
    #[serde(rename = "false")]
    False,
    /// Keep.
    #[serde(rename = "1")]
    One,
    /// Strip.
    #[serde(rename = "0")]
    Zero,
    /// Keep.
    #[serde(rename = "yes")]
    Yes,
    /// Strip.
    #[serde(rename = "no")]
    No,
    /// Keep.
    #[serde(rename = "on")]
    On,
    /// Strip.
    #[serde(rename = "off")]
    Off,
    /// Keep.
    #[serde(rename = "")]
    Empty,
}

/// The query options of `GET /v1/images/{id}/content`. Unknown or repeated keys are refused.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    /// Target width in pixels (alias `width`).
    #[param(minimum = 1, maximum = 4294967295_u64, value_type = Option<u64>)]
    pub w: Option<u32>,
    /// Target height in pixels (alias `height`).
    #[param(minimum = 1, maximum = 4294967295_u64, value_type = Option<u64>)]
    pub h: Option<u32>,
    /// How to fit into w × h (default `inside`).
    #[param(inline)]
    pub fit: Option<FitDoc>,
    /// What to keep when cropping for `cover`, or where to place for `contain` (alias `g`).
    #[param(inline)]
    pub gravity: Option<GravityDoc>,
    /// Allow the output to be larger than the source (default false).
    pub enlarge: Option<bool>,
    /// Crop `x,y,width,height` of the auto-oriented source first; it must lie inside the image.
    #[param(pattern = "^[0-9]{1,9},[0-9]{1,9},[1-9][0-9]{0,8},[1-9][0-9]{0,8}$")]
    pub crop: Option<String>,
    /// Rotate clockwise after auto-orientation, in degrees: a multiple of 90 (alias `r`).
    #[param(multiple_of = 90, value_type = Option<i64>)]
    pub rotate: Option<i64>,
    /// Mirror vertically.
    pub flip: Option<bool>,
    /// Mirror horizontally.
    pub flop: Option<bool>,
    /// Background for flattening and `contain` padding: hex `#rgb`, `#rrggbb`, `#rrggbbaa`, or
    /// `white`, `black`, `transparent` (alias `background`).
    #[param(
        pattern = "^(#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|white|black|transparent)$"
    )]
    pub bg: Option<String>,
    /// Gaussian blur sigma.
    #[param(minimum = 0.3, maximum = 1000)]
    pub blur: Option<f32>,
    /// Unsharp-mask sigma.
    #[param(minimum = 0.3, maximum = 100)]
    pub sharpen: Option<f32>,
    /// Output format (default `auto`: the best the `Accept` header allows; alias `f`).
    #[param(inline)]
    pub format: Option<QueryFormatDoc>,
    /// Quality for lossy formats (default 80 for JPEG and WebP, 60 for AVIF; alias `quality`).
    #[param(minimum = 1, maximum = 100)]
    pub q: Option<u8>,
    /// Lossless WebP, or PNG (not with jpeg or avif).
    pub lossless: Option<bool>,
    /// Progressive JPEG / interlaced PNG (default false).
    pub progressive: Option<bool>,
    /// CPU effort, 0 fastest to 9 smallest (default 4).
    #[param(minimum = 0, maximum = 9)]
    pub effort: Option<u8>,
    /// Chroma subsampling for JPEG and AVIF (default `auto`).
    #[param(inline)]
    pub chroma: Option<ChromaDoc>,
    /// mozjpeg trellis quantisation (default false).
    pub trellis: Option<bool>,
    /// JPEG shrink-on-decode straight to the target size (default false).
    pub fast_shrink: Option<bool>,
    /// Lossless PNG palette reduction when the image allows it (default true).
    pub palette: Option<bool>,
    /// Keep EXIF and the ICC profile, or strip them (default `strip`).
    #[param(inline)]
    pub metadata: Option<MetadataDoc>,
    /// Keep GPS tags too (needs `metadata=keep`).
    pub keep_gps: Option<bool>,
    /// ICC profile handling (default `srgb`).
    #[param(inline)]
    pub icc: Option<IccDoc>,
}

/// A rectangle of the auto-oriented source, in pixels; it must lie inside the image.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CropDoc {
    /// Left edge.
    #[schema(maximum = 4294967295_u64, value_type = u64)]
    pub x: u32,
    /// Top edge.
    #[schema(maximum = 4294967295_u64, value_type = u64)]
    pub y: u32,
    /// Width.
    #[schema(minimum = 1, maximum = 4294967295_u64, value_type = u64)]
    pub width: u32,
    /// Height.
    #[schema(minimum = 1, maximum = 4294967295_u64, value_type = u64)]
    pub height: u32,
}

/// Processing options as JSON: every member is optional, unknown members are refused. The same
/// options as the query of `GET /v1/images/{id}/content`, with long names.
// The enum-typed members have no doc comment: a description next to an inline enum makes utoipa
// emit `allOf: [enum, {type: object}]`, which no value satisfies. Their enums carry the text.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsDoc {
    /// Target width in pixels.
    #[schema(minimum = 1, maximum = 4294967295_u64, value_type = Option<u64>)]
    pub width: Option<u32>,
    /// Target height in pixels.
    #[schema(minimum = 1, maximum = 4294967295_u64, value_type = Option<u64>)]
    pub height: Option<u32>,
    // How to fit into width × height (default `inside`).
    #[allow(missing_docs)]
    #[schema(required = false, inline)]
    pub fit: FitDoc,
    // What to keep when cropping for `cover`, or where to place for `contain`.
    #[allow(missing_docs)]
    #[schema(required = false, inline)]
    pub gravity: GravityDoc,
    /// Allow the output to be larger than the source.
    #[schema(required = false)]
    pub enlarge: bool,
    /// Crop this rectangle of the auto-oriented source first.
    #[schema(inline)]
    pub crop: Option<CropDoc>,
    /// Rotate clockwise after auto-orientation, in degrees: a multiple of 90.
    #[schema(required = false, multiple_of = 90)]
    pub rotate: i64,
    /// Mirror vertically.
    #[schema(required = false)]
    pub flip: bool,
    /// Mirror horizontally.
    #[schema(required = false)]
    pub flop: bool,
    /// Background: hex `#rgb`, `#rrggbb`, `#rrggbbaa`, or `white`, `black`, `transparent`.
    #[schema(
        pattern = "^(#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|white|black|transparent)$"
    )]
    pub background: Option<String>,
    /// Gaussian blur sigma.
    #[schema(minimum = 0.3, maximum = 1000)]
    pub blur: Option<f32>,
    /// Unsharp-mask sigma.
    #[schema(minimum = 0.3, maximum = 100)]
    pub sharpen: Option<f32>,
    // Output format (default `auto`).
    #[allow(missing_docs)]
    #[schema(required = false, inline)]
    pub format: FormatDoc,
    /// Quality for lossy formats.
    #[schema(minimum = 1, maximum = 100)]
    pub quality: Option<u8>,
    /// Lossless WebP, or PNG (not with jpeg or avif).
    #[schema(required = false)]
    pub lossless: bool,
    /// Progressive JPEG / interlaced PNG.
    pub progressive: Option<bool>,
    /// CPU effort, 0 fastest to 9 smallest.
    #[schema(minimum = 0, maximum = 9)]
    pub effort: Option<u8>,
    // Chroma subsampling for JPEG and AVIF (default `auto`).
    #[allow(missing_docs)]
    #[schema(required = false, inline)]
    pub chroma: ChromaDoc,
    /// mozjpeg trellis quantisation.
    #[schema(required = false)]
    pub trellis: bool,
    /// JPEG shrink-on-decode straight to the target size.
    #[schema(required = false)]
    pub fast_shrink: bool,
    /// Lossless PNG palette reduction (default true).
    #[schema(required = false)]
    pub palette: bool,
    /// Keep EXIF metadata and the ICC profile.
    #[schema(required = false)]
    pub keep_metadata: bool,
    /// Keep GPS tags too (needs `keep_metadata`).
    #[schema(required = false)]
    pub keep_gps: bool,
    // ICC profile handling (default `srgb`).
    #[allow(missing_docs)]
    #[schema(required = false, inline)]
    pub icc: IccDoc,
}

/// `blur` and `sharpen` are held as `f32`, so a value just outside its documented range can
/// round onto the boundary (`100.00000000000003` becomes `100.0`) and slip through the engine's
/// range check. This checks them at full precision first; the message is the engine's.
pub fn check_sigmas<'a>(
    pairs: impl IntoIterator<Item = (&'a str, f64)>,
) -> Result<(), pixeld_imaging::Error> {
    for (key, v) in pairs {
        let (name, max) = match key {
            "blur" => ("blur", 1000.0),
            "sharpen" => ("sharpen", 100.0),
            _ => continue,
        };
        if !(0.3..=max).contains(&v) {
            return Err(pixeld_imaging::Error::InvalidOptions(format!(
                "{name} must be a sigma from 0.3 to {max}; got {v}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_sigmas;

    #[test]
    fn sigmas_are_checked_before_they_round_into_range() {
        assert!(check_sigmas([("sharpen", 100.0), ("blur", 0.3)]).is_ok());
        // As f32 this is exactly 100.0, which the engine would accept.
        assert_eq!(100.000_000_000_000_03_f64 as f32, 100.0);
        let e = check_sigmas([("sharpen", 100.000_000_000_000_03)]).unwrap_err();
        assert_eq!(e.kind(), "invalid-options");
        assert!(check_sigmas([("blur", 1_000.000_000_000_1)]).is_err());
        assert!(check_sigmas([("blur", 0.299_999_999_999)]).is_err());
        assert!(
            check_sigmas([("w", 1e12)]).is_ok(),
            "other keys are the engine's to check"
        );
    }

    #[test]
    fn a_json_body_just_above_a_limit_is_refused() {
        // The next double above 100: serde_json's fast float parser used to read it as 100.0
        // (`float_roundtrip` reads it exactly), and the body slipped through.
        for body in [
            r#"{"sharpen": 100.00000000000001}"#,
            r#"{"blur": 1000.0000000000001}"#,
        ] {
            assert!(
                serde_json::from_str::<crate::routes::images::OptionsBody>(body).is_err(),
                "{body} was accepted"
            );
        }
        assert!(
            serde_json::from_str::<crate::routes::images::OptionsBody>(r#"{"sharpen": 100}"#)
                .is_ok()
        );
    }

    #[test]
    fn the_documented_options_are_the_ones_the_engine_reads() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi::json()).unwrap();
        let body = &doc["components"]["schemas"]["OptionsDoc"]["properties"];
        let json_names: std::collections::BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let engine = serde_json::to_value(pixeld_imaging::Options::default()).unwrap();
        let engine_names: std::collections::BTreeSet<&str> = engine
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(json_names, engine_names);
        for (name, schema) in body.as_object().unwrap() {
            assert!(schema.get("allOf").is_none(), "{name}: {schema}");
        }
        // Every documented query option parses.
        let params = doc["paths"]["/v1/images/{id}/content"]["get"]["parameters"]
            .as_array()
            .unwrap();
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let value = match name {
                "crop" => "0,0,1,1",
                "bg" => "white",
                "rotate" => "90",
                "blur" | "sharpen" => "1",
                "format" => "webp",
                "fit" => "cover",
                "gravity" => "north",
                "metadata" => "keep",
                "icc" => "keep",
                "chroma" => "444",
                "enlarge" | "flip" | "flop" | "lossless" | "progressive" | "trellis"
                | "fast_shrink" | "palette" | "keep_gps" => "false",
                _ => "1",
            };
            pixeld_imaging::Options::from_query(&format!("{name}={value}"))
                .unwrap_or_else(|e| panic!("documented query option {name}: {e}"));
        }
    }
}
