"""Render the PNG/ICO/ICNS icons from the same drawing as qmf-studio.svg (Pillow only).

    .venv/bin/python packaging/icons/make_icons.py
The outputs are committed; run this again only after changing the drawing.
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
S = 1024  # drawn at 1024 px (the SVG's 256 units x 4), then scaled down


def draw() -> Image.Image:
    k = S / 256
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    # vertical gradient clipped to a rounded square
    grad = Image.new("RGBA", (S, S))
    top, bottom = (0x2B, 0x4C, 0x7E), (0x15, 0x24, 0x40)
    gd = ImageDraw.Draw(grad)
    for y in range(S):
        t = y / (S - 1)
        gd.line([(0, y), (S, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)) + (255,))
    mask = Image.new("L", (S, S), 0)
    ImageDraw.Draw(mask).rounded_rectangle([8 * k, 8 * k, 248 * k, 248 * k], radius=52 * k, fill=255)
    img.paste(grad, (0, 0), mask)
    d = ImageDraw.Draw(img)
    blue, orange, white = (0x4F, 0xC3, 0xF7, 255), (0xFF, 0xB7, 0x4D, 255), (0xE8, 0xF1, 0xFF, 255)
    d.rounded_rectangle([44 * k, 60 * k, 78 * k, 196 * k], radius=10 * k, fill=blue)
    d.rounded_rectangle([94 * k, 112 * k, 128 * k, 196 * k], radius=10 * k, fill=orange)

    def curve(p0, p1, p2, p3, color):
        pts = []
        for i in range(65):
            t = i / 64
            x = (1 - t) ** 3 * p0[0] + 3 * (1 - t) ** 2 * t * p1[0] + 3 * (1 - t) * t**2 * p2[0] + t**3 * p3[0]
            y = (1 - t) ** 3 * p0[1] + 3 * (1 - t) ** 2 * t * p1[1] + 3 * (1 - t) * t**2 * p2[1] + t**3 * p3[1]
            pts.append((x * k, y * k))
        d.line(pts, fill=color, width=round(10 * k), joint="curve")
        for x, y in (pts[0], pts[-1]):
            r = 5 * k
            d.ellipse([x - r, y - r, x + r, y + r], fill=color)

    curve((78, 100), (130, 100), (140, 128), (168, 128), blue)
    curve((128, 150), (150, 150), (152, 128), (168, 128), orange)
    cx, cy = 184 * k, 128 * k
    d.ellipse([cx - 37 * k, cy - 37 * k, cx + 37 * k, cy + 37 * k], fill=white)
    d.ellipse([cx - 23 * k, cy - 23 * k, cx + 23 * k, cy + 23 * k], fill=(0x20, 0x38, 0x60, 255))
    d.ellipse([cx - 10 * k, cy - 10 * k, cx + 10 * k, cy + 10 * k], fill=white)
    return img


def main() -> None:
    big = draw()
    for size in (16, 32, 48, 64, 128, 256, 512):
        big.resize((size, size), Image.LANCZOS).save(HERE / f"qmf-studio-{size}.png")
    big.resize((256, 256), Image.LANCZOS).save(HERE / "qmf-studio.png")
    big.save(HERE / "qmf-studio.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    big.save(HERE / "qmf-studio.icns")


if __name__ == "__main__":
    main()
