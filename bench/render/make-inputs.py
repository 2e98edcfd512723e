"""Writes the card's two images, deterministically, with the standard library only.

    python3 make-inputs.py <dir>

avatar.png: 400×400 RGB, a head-and-shoulders portrait (shaded shapes on a gradient) with
deterministic grain, so it compresses like a photo rather than like flat colour (~290 KB).
logo.png: 480×144 RGBA, a rounded-square mark and three bars on transparency, anti-aliased
(4×4 supersampling): a 2× asset shown at 240×72.
"""
import math
import os
import struct
import sys
import zlib


def png(path, width, height, channels, rows):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    color = {3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def clamp(v):
    return 0 if v < 0 else 255 if v > 255 else int(v)


def avatar(path, n=400):
    seed = 0x2545F491
    rows = []
    for y in range(n):
        row = []
        for x in range(n):
            u, v = x / n, y / n
            # Background: warm-to-teal gradient.
            r, g, b = 240 - 120 * v, 170 + 40 * u, 120 + 100 * v
            # Shoulders: an ellipse at the bottom.
            if ((u - 0.5) / 0.42) ** 2 + ((v - 1.05) / 0.38) ** 2 < 1:
                shade = 0.75 + 0.25 * (1 - abs(u - 0.5) * 2)
                r, g, b = 40 * shade, 70 * shade, 120 * shade
            # Head: a shaded disc.
            d = math.hypot(u - 0.5, v - 0.42) / 0.2
            if d < 1:
                light = 0.6 + 0.4 * max(0.0, 1 - math.hypot(u - 0.44, v - 0.36) / 0.25)
                r, g, b = 225 * light, 180 * light, 150 * light
                # Hair: the top third of the head.
                if v < 0.36 - 0.05 * math.cos((u - 0.5) * 8):
                    r, g, b = 60 * light, 40 * light, 30 * light
            # Grain, from a 32-bit xorshift.
            seed ^= (seed << 13) & 0xFFFFFFFF
            seed ^= seed >> 17
            seed ^= (seed << 5) & 0xFFFFFFFF
            noise = (seed & 15) - 7.5
            row += [clamp(r + noise), clamp(g + noise), clamp(b + noise)]
        rows.append(row)
    png(path, n, n, 3, rows)


def logo(path, w=480, h=144, ss=4):
    def inside(x, y):
        # A rounded square mark, 112×112 at (16, 16), radius 28.
        cx, cy = min(max(x, 44), 100), min(max(y, 44), 100)
        if 16 <= x <= 128 and 16 <= y <= 128 and math.hypot(x - cx, y - cy) <= 28:
            # A diagonal cut-out through the mark.
            return 0 if abs((x - 16) - (128 - y)) < 10 else 1
        # Three bars of a wordmark.
        for i, (x0, x1) in enumerate([(160, 460), (160, 400), (160, 330)]):
            y0 = 30 + i * 34
            if x0 <= x <= x1 and y0 <= y <= y0 + 18:
                return 2
        return 0

    colours = {1: (124, 58, 237), 2: (255, 255, 255)}
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(ss):
                for sx in range(ss):
                    k = inside(x + (sx + 0.5) / ss, y + (sy + 0.5) / ss)
                    if k:
                        c = colours[k]
                        acc[0] += c[0]
                        acc[1] += c[1]
                        acc[2] += c[2]
                        acc[3] += 1
            a = acc[3]
            if a:
                row += [clamp(acc[0] / a), clamp(acc[1] / a), clamp(acc[2] / a), clamp(255 * a / ss / ss)]
            else:
                row += [0, 0, 0, 0]
        rows.append(row)
    png(path, w, h, 4, rows)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    avatar(os.path.join(out, "avatar.png"))
    logo(os.path.join(out, "logo.png"))
