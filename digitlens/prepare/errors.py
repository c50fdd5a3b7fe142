"""Why an upload cannot be prepared: InputError and the names of its reasons.

A reason is a short stable name for metrics and clients; which HTTP status answers it is the
reading service's business (``digitlens.service``), not image preparation's.
"""
from __future__ import annotations

REASONS = {
    "empty": "the request has no image",
    "not_an_image": "the body is no image Digit Lens can decode",
    "unsupported_type": "an image format (or a data URL's type) outside the accepted list",
    "too_many_pixels": "more decoded pixels than the model's max_pixels, known from the header",
    "corrupt_image": "truncated or damaged image data",
    "blank": "no ink (or no object) found: a blank or contrast-less image",
    "not_a_number": "too many separate marks to be a written number",
}


class InputError(ValueError):
    """The upload cannot be turned into what the network reads; ``reason`` is one of REASONS."""

    def __init__(self, message: str, reason: str):
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(message)
        self.reason = reason


class OnlyPrint(InputError):
    """The upload holds printed lines (a form's boxes, ruled or squared paper) and no other ink."""

    def __init__(self):
        super().__init__("no digit found: the image holds only printed lines", "blank")
