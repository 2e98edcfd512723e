//! AVIF output with subsampled chroma: RGB to BT.601 full-range YCbCr 4:2:0, coded by rav1e,
//! wrapped by avif-serialize.
//!
//! ravif, which writes our 4:4:4 AVIFs, has no 4:2:0. For photographs at ordinary qualities
//! 4:2:0 is what JPEG and lossy WebP always do and what libvips picks below Q 90: the eye
//! hardly sees colour at half resolution, and there are half as many samples to code. On the
//! 24 MP → 2048 px bench job (`bench/imaging/README.md`) it made the file 2.3 % smaller at
//! equal SSIM and the encode 17 % faster than ravif's 4:4:4 at the same speed.

use image::DynamicImage;
use rav1e::prelude::*;

use crate::error::{Error, Result};

/// rav1e's quantizer (0-255) for a quality 1-100, on the same scale as ravif's, so that one
/// `q` means the same whichever chroma layout is written.
pub(crate) fn quantizer(quality: f32) -> u8 {
    let q = quality / 100.0;
    let x = if q >= 0.82 {
        (1.0 - q) * 2.6
    } else if q > 0.25 {
        1.0 - 0.125 - q * 0.5
    } else {
        1.0 - q
    };
    (x * 255.0).round().clamp(0.0, 255.0) as u8
}

/// rav1e settings for one still picture at `speed` (1 slow … 10 fast): the preset, minus
/// the tools that only help video (reference frames, look-ahead, scene cuts).
fn speed_settings(speed: u8) -> SpeedSettings {
    let mut s = SpeedSettings::from_preset(speed);
    s.multiref = false;
    s.rdo_lookahead_frames = 1;
    s.scene_detection_mode = SceneDetectionSpeed::None;
    s.motion.include_near_mvs = false;
    s
}

/// Codes one still picture from 8-bit planes (data, stride), BT.601 full range, with the
/// still-picture speed settings above; returns the AV1 bitstream.
pub(crate) fn encode_planes(
    width: usize,
    height: usize,
    sampling: ChromaSampling,
    quantizer: u8,
    speed: u8,
    planes: &[(&[u8], usize)],
) -> Result<Vec<u8>> {
    let color_description = (sampling != ChromaSampling::Cs400).then_some(ColorDescription {
        color_primaries: ColorPrimaries::BT709,
        transfer_characteristics: TransferCharacteristics::SRGB,
        matrix_coefficients: MatrixCoefficients::BT601,
    });
    // Tiles let rav1e use the threads of the current rayon pool (one tile per thread, none
    // smaller than 128×128); with one thread the picture is one tile.
    let tiles = rayon::current_num_threads()
        .min(width * height / (128 * 128))
        .max(1);
    let cfg = Config::new().with_encoder_config(EncoderConfig {
        width,
        height,
        bit_depth: 8,
        chroma_sampling: sampling,
        pixel_range: PixelRange::Full,
        color_description,
        still_picture: true,
        quantizer: usize::from(quantizer),
        min_quantizer: quantizer,
        // Psychovisual beat Psnr by 4-5 % in bytes at equal SSIM on the bench photograph.
        tune: Tune::Psychovisual,
        tiles,
        speed_settings: speed_settings(speed),
        ..Default::default()
    });
    let mut ctx: Context<u8> = cfg
        .new_context()
        .map_err(|e| Error::Encode(format!("rav1e: {e}")))?;
    let mut frame = ctx.new_frame();
    for (plane, (data, stride)) in frame.planes.iter_mut().zip(planes) {
        plane.copy_from_raw_u8(data, *stride, 1);
    }
    ctx.send_frame(frame)
        .map_err(|e| Error::Encode(format!("rav1e: {e}")))?;
    ctx.flush();
    let mut out = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(mut packet) => out.append(&mut packet.data),
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => return Err(Error::Encode(format!("rav1e: {e}"))),
        }
    }
    Ok(out)
}

/// Splits RGB(A) pixels into a full-resolution luma plane and two chroma planes averaged
/// over each 2×2 block (edge blocks over the pixels they have), BT.601 full range, 8 bits.
fn ycbcr_420(px: &[u8], channels: usize, w: usize, h: usize) -> [Vec<u8>; 3] {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut y = Vec::with_capacity(w * h);
    // Sums of Cb/Cr over each 2×2 block, in 16.16 fixed point.
    let mut cb = vec![0i64; cw * ch];
    let mut cr = vec![0i64; cw * ch];
    for row in 0..h {
        let line = &px[row * w * channels..(row + 1) * w * channels];
        let crow = (row / 2) * cw;
        for (x, p) in line.chunks_exact(channels).enumerate() {
            let (r, g, b) = (i64::from(p[0]), i64::from(p[1]), i64::from(p[2]));
            // Y = .299 R + .587 G + .114 B; Cb = (B - Y) / 1.772; Cr = (R - Y) / 1.402.
            y.push(((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8);
            cb[crow + x / 2] += -11059 * r - 21709 * g + 32768 * b;
            cr[crow + x / 2] += 32768 * r - 27439 * g - 5329 * b;
        }
    }
    let finish = |sums: Vec<i64>| -> Vec<u8> {
        sums.into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (cx, cy) = (i % cw, i / cw);
                let nx = 2 - (cx * 2 + 2).saturating_sub(w);
                let ny = 2 - (cy * 2 + 2).saturating_sub(h);
                let n = (nx * ny) as i64;
                ((s + (n << 15)).div_euclid(n << 16) + 128).clamp(0, 255) as u8
            })
            .collect()
    };
    [y, finish(cb), finish(cr)]
}

/// Encodes `img` as an 8-bit 4:2:0 AVIF (alpha, when present, as a full-resolution
/// monochrome auxiliary image at the same quantizer). 8 bits rather than ravif's 10: on the
/// bench photograph 10 bits saved another 0.9 % at equal SSIM but took 1.6× the time.
pub(crate) fn encode_420(
    img: &DynamicImage,
    quality: f32,
    speed: u8,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let owned;
    let (px, channels): (&[u8], usize) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw(), 3),
        DynamicImage::ImageRgba8(i) => (i.as_raw(), 4),
        other => {
            owned = other.to_rgb8();
            (owned.as_raw(), 3)
        }
    };
    let q = quantizer(quality);
    let [y, cb, cr] = ycbcr_420(px, channels, w, h);
    let cw = w.div_ceil(2);
    let color = encode_planes(
        w,
        h,
        ChromaSampling::Cs420,
        q,
        speed,
        &[(&y, w), (&cb, cw), (&cr, cw)],
    )?;
    let alpha = if channels == 4 {
        let a: Vec<u8> = px.chunks_exact(4).map(|p| p[3]).collect();
        Some(encode_planes(
            w,
            h,
            ChromaSampling::Cs400,
            q,
            speed,
            &[(&a, w)],
        )?)
    } else {
        None
    };
    let mut avif = avif_serialize::Aviffy::new();
    avif.set_chroma_subsampling((true, true))
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_full_color_range(true);
    if let Some(exif) = exif {
        avif.set_exif(exif.to_vec());
    }
    Ok(avif.to_vec(&color, alpha.as_deref(), w as u32, h as u32, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroma_is_the_average_of_each_block_and_edges_use_what_they_have() {
        // 3×3: a 2×2 block, a 1×2 column, a 2×1 row and a lone corner.
        let red = [255u8, 0, 0];
        let blue = [0u8, 0, 255];
        let grey = [128u8, 128, 128];
        let px: Vec<u8> = [red, blue, grey, blue, red, grey, grey, grey, grey].concat();
        let [y, cb, cr] = ycbcr_420(&px, 3, 3, 3);
        assert_eq!(y[0], 76, "red's luma");
        assert_eq!(y[1], 29, "blue's luma");
        assert_eq!(y[2], 128, "grey's luma");
        // Cb of red is −43.0 and of blue +127.5: the mean, 42.2, plus 128.
        assert_eq!(cb[0], 170);
        // Cr of red is +127.5 and of blue −20.7: the mean, 53.4, plus 128.
        assert_eq!(cr[0], 181);
        // Grey blocks are neutral whatever their size.
        assert_eq!(
            (cb[1], cr[1], cb[2], cr[2], cb[3], cr[3]),
            (128, 128, 128, 128, 128, 128)
        );
    }

    #[test]
    fn quality_maps_like_ravif() {
        assert_eq!(quantizer(100.0), 0);
        assert_eq!(quantizer(60.0), 147);
        assert!(quantizer(1.0) > quantizer(50.0));
    }
}
