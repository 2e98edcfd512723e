//! Animated GIF and WebP: same-format outputs keep every frame, the delays and the loop
//! count; other formats get the first frame; a frame bomb is refused from the header.

mod common;

use std::io::Cursor;

use image::{AnimationDecoder, Rgba, RgbaImage};
use pixeld_imaging::{Error, Limits, Options, OutputFormat, probe, process};

const COLOURS: [[u8; 4]; 3] = [[220, 30, 30, 255], [30, 200, 40, 255], [40, 50, 230, 255]];
const DELAYS_CS: [u16; 3] = [10, 25, 40];

/// Frame `i` of a 40×30 test animation: a solid colour with a transparent top-left corner.
fn frame(i: usize) -> RgbaImage {
    RgbaImage::from_fn(40, 30, |x, y| {
        if x < 8 && y < 6 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba(COLOURS[i])
        }
    })
}

fn gif_animation(repeat: gif::Repeat) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, 40, 30, &[]).unwrap();
        enc.set_repeat(repeat).unwrap();
        for (i, delay) in DELAYS_CS.iter().enumerate() {
            let mut px = frame(i).into_raw();
            let mut f = gif::Frame::from_rgba_speed(40, 30, &mut px, 10);
            f.delay = *delay;
            f.dispose = gif::DisposalMethod::Background;
            enc.write_frame(&f).unwrap();
        }
    }
    out
}

fn webp_animation(loop_count: i32) -> Vec<u8> {
    let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i).into_raw()).collect();
    let cfg = webp::WebPConfig::new().unwrap();
    let mut enc = webp::AnimEncoder::new(40, 30, &cfg);
    enc.set_loop_count(loop_count);
    let mut t = 0;
    for (i, px) in frames.iter().enumerate() {
        enc.add_frame(webp::AnimFrame::from_rgba(px, 40, 30, t));
        t += i32::from(DELAYS_CS[i]) * 10;
    }
    enc.encode().to_vec()
}

/// (frames, delays in ms, loop) of a GIF, read with the `gif` crate.
fn read_gif(bytes: &[u8]) -> (Vec<RgbaImage>, Vec<u32>, gif::Repeat) {
    let mut o = gif::DecodeOptions::new();
    o.set_color_output(gif::ColorOutput::RGBA);
    let dec = o.read_info(Cursor::new(bytes)).unwrap();
    let repeat = dec.repeat();
    let frames = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    let delays = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .collect();
    (
        frames.into_iter().map(|f| f.into_buffer()).collect(),
        delays,
        repeat,
    )
}

/// (frames, delays in ms, loop count) of a WebP, read with `image-webp`.
fn read_webp(bytes: &[u8]) -> (Vec<RgbaImage>, Vec<u32>, image_webp::LoopCount) {
    let mut dec = image_webp::WebPDecoder::new(Cursor::new(bytes)).unwrap();
    assert!(dec.is_animated());
    let (w, h) = dec.dimensions();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let (mut frames, mut delays) = (Vec::new(), Vec::new());
    for _ in 0..dec.num_frames() {
        delays.push(dec.read_frame(&mut buf).unwrap());
        let rgba = if dec.has_alpha() {
            buf.clone()
        } else {
            buf.chunks(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        frames.push(RgbaImage::from_raw(w, h, rgba).unwrap());
    }
    (frames, delays, dec.loop_count())
}

fn close(a: [u8; 4], b: [u8; 4], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn run(bytes: &[u8], query: &str) -> pixeld_imaging::Output {
    process(
        bytes,
        &Options::from_query(query).unwrap(),
        &Limits::default(),
    )
    .unwrap()
}

#[test]
fn an_animated_gif_resized_to_half_keeps_its_frames_delays_and_loop() {
    for repeat in [gif::Repeat::Infinite, gif::Repeat::Finite(2)] {
        let src = gif_animation(repeat);
        let p = probe(&src, &Limits::default()).unwrap();
        assert!(p.animated);
        let out = run(&src, "w=20");
        assert_eq!(out.format, OutputFormat::Gif);
        assert_eq!((out.width, out.height), (20, 15));
        let (frames, delays, got_repeat) = read_gif(&out.bytes);
        assert_eq!(frames.len(), 3);
        assert_eq!(delays, [100, 250, 400]);
        assert_eq!(got_repeat, repeat);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.dimensions(), (20, 15));
            let mid = f.get_pixel(14, 10).0;
            assert!(close(mid, COLOURS[i], 24), "frame {i}: {mid:?}");
            assert_eq!(
                f.get_pixel(0, 0).0[3],
                0,
                "frame {i}: corner stays transparent"
            );
        }
    }
}

#[test]
fn an_animated_webp_resized_to_half_keeps_its_frames_delays_and_loop() {
    let src = webp_animation(3);
    let (_, src_delays, src_loop) = read_webp(&src);
    assert_eq!(
        src_loop,
        image_webp::LoopCount::Times(3.try_into().unwrap())
    );
    let out = run(&src, "w=20&format=webp&q=90");
    assert_eq!(
        (out.format, out.width, out.height),
        (OutputFormat::Webp, 20, 15)
    );
    let (frames, delays, got_loop) = read_webp(&out.bytes);
    assert_eq!(frames.len(), 3);
    assert_eq!(delays[..2], [100, 250]);
    // The last frame's duration is whatever the source says: the `webp` crate's AnimEncoder
    // that made the source cannot set it, so libwebp picked one.
    assert_eq!(delays, src_delays, "source delays {src_delays:?}");
    assert_eq!(got_loop, src_loop);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.dimensions(), (20, 15));
        let mid = f.get_pixel(14, 10).0;
        assert!(close(mid, COLOURS[i], 24), "frame {i}: {mid:?}");
        assert!(
            f.get_pixel(0, 0).0[3] < 40,
            "frame {i}: corner stays transparent"
        );
    }
    // format=auto keeps an animated WebP a WebP when the client takes WebP.
    let auto = process(
        &src,
        &Options {
            accept: Some("image/avif,image/webp,*/*".to_owned()),
            ..Options::from_query("w=20").unwrap()
        },
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(auto.format, OutputFormat::Webp);
    assert_eq!(read_webp(&auto.bytes).0.len(), 3);
}

#[test]
fn other_formats_get_the_first_frame() {
    for src in [gif_animation(gif::Repeat::Infinite), webp_animation(0)] {
        for query in ["w=20&format=png", "w=20&format=jpeg"] {
            let out = run(&src, query);
            assert_eq!((out.width, out.height), (20, 15), "{query}");
            let img = common::second_decode(&out.bytes).to_rgba8();
            let mid = img.get_pixel(14, 10).0;
            assert!(close(mid, COLOURS[0], 24), "{query}: {mid:?}");
        }
    }
}

#[test]
fn an_animation_nothing_changes_is_passed_through() {
    let gif = gif_animation(gif::Repeat::Infinite);
    assert_eq!(run(&gif, "").bytes, gif);
    let webp = webp_animation(0);
    assert_eq!(run(&webp, "format=webp").bytes, webp);
    // Asking for a quality is asking for a re-encode.
    assert_ne!(run(&webp, "format=webp&q=50").bytes, webp);
}

#[test]
fn a_gif_frame_bomb_is_refused_from_the_header() {
    // 600 one-pixel frames on a 1000×1000 screen: tiny on disk, 600 megapixels to composite.
    let mut bomb = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bomb, 1000, 1000, &[0, 0, 0, 255, 255, 255]).unwrap();
        for i in 0..600u16 {
            let f = gif::Frame {
                width: 1,
                height: 1,
                left: i,
                buffer: std::borrow::Cow::Owned(vec![1]),
                ..gif::Frame::default()
            };
            enc.write_frame(&f).unwrap();
        }
    }
    assert!(bomb.len() < 20_000, "{} bytes", bomb.len());
    let want = Error::TooManyFrames {
        frames: 600,
        width: 1000,
        height: 1000,
        pixels: 600_000_000,
        max: 500_000_000,
    };
    assert_eq!(probe(&bomb, &Limits::default()).unwrap_err(), want);
    let err = process(&bomb, &Options::default(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "too-many-frames");

    // The same budget applies to the output: 12 frames of 40×30 fit 10 × 1500 pixels, but
    // not once enlarged to 44×33.
    let twelve = {
        let mut out = Vec::new();
        let mut enc = gif::Encoder::new(&mut out, 40, 30, &[]).unwrap();
        for i in 0..12 {
            let mut px = frame(i % 3).into_raw();
            enc.write_frame(&gif::Frame::from_rgba_speed(40, 30, &mut px, 10))
                .unwrap();
        }
        drop(enc);
        out
    };
    let small = Limits {
        max_pixels: 1500,
        ..Limits::default()
    };
    assert!(process(&twelve, &Options::from_query("w=40").unwrap(), &small).is_ok());
    let err = process(
        &twelve,
        &Options::from_query("w=44&enlarge").unwrap(),
        &small,
    )
    .unwrap_err();
    assert_eq!(err.kind(), "too-many-frames", "{err}");
}

#[test]
fn a_truncated_animation_is_corrupt() {
    for src in [gif_animation(gif::Repeat::Infinite), webp_animation(0)] {
        let cut = &src[..src.len() * 3 / 4];
        let err = process(
            cut,
            &Options::from_query("w=20").unwrap(),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), "corrupt-image", "{err}");
    }
}
