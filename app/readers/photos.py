"""Readers' photos: an upload checked and reduced to what a card prints (JPEG, 3 × 4)."""
import io

from flask_babel import lazy_gettext as _l

from app.core.errors import ValidationError

MAX_BYTES = 5 * 1024 * 1024
# 30 × 40 mm at 250 dpi: sharp on a card, about 30 KB in the database.
SIZE = (300, 400)


def card_photo(data):
    """JPEG bytes of the uploaded image (JPEG or PNG), at most SIZE; ValidationError else."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        return None
    if len(data) > MAX_BYTES:
        raise ValidationError(_l("The photo is too large (at most %(mb)d MB)."),
                              field="photo_upload", mb=MAX_BYTES // (1024 * 1024))
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("JPEG", "PNG"):
            raise UnidentifiedImageError()
        image = ImageOps.exif_transpose(image)  # phone photos stored sideways
        image = image.convert("RGB")
        image.thumbnail(SIZE)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(_l("The photo must be a JPEG or PNG image."),
                              field="photo_upload") from None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def mimetype(data):
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
