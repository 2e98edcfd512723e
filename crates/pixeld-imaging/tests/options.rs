//! The options a user writes in a URL, a JSON body or on the command line.

use pixeld_imaging::{
    Chroma, Color, CropRect, Fit, Format, Gravity, Options, OutputFormat, Rotation,
};

#[test]
fn a_typical_query_is_understood() {
    let o = Options::from_query("w=800&h=600&fit=cover&format=webp&q=80").unwrap();
    assert_eq!(
        (o.width, o.height, o.fit, o.format, o.quality),
        (Some(800), Some(600), Fit::Cover, Format::Webp, Some(80))
    );
}

#[test]
fn every_option_has_a_query_spelling() {
    let o = Options::from_query(
        "?width=10&height=20&fit=contain&gravity=smart&enlarge=true&crop=1,2,3,4&rotate=-90&flip&flop=1\
         &bg=%23ff880080&blur=2.5&sharpen=1&f=jpg&quality=90&progressive=false&effort=7&chroma=444&trellis=1&fast_shrink\
         &palette=no&metadata=keep&keep_gps=1&icc=keep",
    )
    .unwrap();
    assert_eq!(o.gravity, Gravity::Smart);
    assert_eq!(
        o.crop,
        Some(CropRect {
            x: 1,
            y: 2,
            width: 3,
            height: 4
        })
    );
    assert_eq!(o.rotate, Rotation::Cw270);
    assert!(o.flip && o.flop && o.enlarge && o.keep_metadata && o.keep_gps);
    assert_eq!(
        o.background,
        Some(Color {
            r: 255,
            g: 136,
            b: 0,
            a: 128
        })
    );
    assert_eq!(o.format, Format::Jpeg);
    assert_eq!(
        (o.progressive, o.effort, o.trellis, o.palette),
        (Some(false), Some(7), true, false)
    );
    assert!(o.fast_shrink);
    assert_eq!(o.chroma, Chroma::Cs444);
    for (v, want) in [
        ("420", Chroma::Cs420),
        ("4:2:0", Chroma::Cs420),
        ("auto", Chroma::Auto),
    ] {
        assert_eq!(
            Options::from_query(&format!("chroma={v}")).unwrap().chroma,
            want
        );
    }
    let json: Options = serde_json::from_str(r#"{"chroma":"420"}"#).unwrap();
    assert_eq!(json.chroma, Chroma::Cs420);
}

#[test]
fn an_unknown_key_is_named_in_the_error() {
    let err = Options::from_query("w=800&widht=3").unwrap_err();
    assert_eq!(err.kind(), "invalid-options");
    assert!(err.to_string().contains("\"widht\""), "{err}");
}

#[test]
fn bad_values_say_what_is_expected() {
    for (q, needle) in [
        ("w=abc", "w must be a positive whole number"),
        ("w=0", "width must be at least 1"),
        ("q=101", "quality must be from 1 to 100"),
        (
            "fit=stretch",
            "fit must be one of cover, contain, fill, inside, outside",
        ),
        (
            "format=gif",
            "format must be one of auto, jpeg, png, webp, avif",
        ),
        ("rotate=45", "rotate must be a multiple of 90"),
        ("bg=chartreuse", "background must be a hex colour"),
        ("crop=1,2,3", "crop must be four"),
        ("effort=12", "effort must be from 0 to 9"),
        ("chroma=422", "chroma must be one of auto, 420, 444"),
        ("blur=0", "blur must be a sigma"),
        (
            "lossless=1&format=jpeg",
            "lossless is available for png and webp",
        ),
        ("keep_gps=1", "keep_gps needs keep_metadata"),
        ("w=1&w=2", "given more than once"),
    ] {
        let err = Options::from_query(q).unwrap_err();
        assert_eq!(err.kind(), "invalid-options");
        assert!(err.to_string().contains(needle), "{q}: {err}");
    }
}

#[test]
fn json_bodies_use_the_same_struct_and_refuse_unknown_fields() {
    let o: Options =
        serde_json::from_str(r##"{"width":300,"fit":"outside","background":"#fff","rotate":180}"##)
            .unwrap();
    assert_eq!(
        (o.width, o.fit, o.background, o.rotate),
        (Some(300), Fit::Outside, Some(Color::WHITE), Rotation::Cw180)
    );
    assert!(serde_json::from_str::<Options>(r#"{"widht":300}"#).is_err());
    // And what we serialise, we read back.
    let back: Options = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
}

#[test]
fn auto_format_follows_the_accept_header() {
    let mut o = Options::default();
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    o.accept = Some(chrome.into());
    assert_eq!(o.output_format(false), OutputFormat::Avif);
    o.accept = Some("image/webp,*/*".into());
    assert_eq!(o.output_format(false), OutputFormat::Webp);
    o.accept = Some("image/avif;q=0,image/webp;q=0.5".into());
    assert_eq!(o.output_format(true), OutputFormat::Webp);
    o.accept = Some("*/*".into());
    assert_eq!(o.output_format(false), OutputFormat::Jpeg);
    assert_eq!(o.output_format(true), OutputFormat::Png);
    o.accept = None;
    o.lossless = true;
    assert_eq!(o.output_format(false), OutputFormat::Png);
}
