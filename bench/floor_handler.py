"""The floor Digit Lens is measured against: the least a TorchServe handler can do for a digit.

Decode, greyscale, resize to 28x28, forward of the same DigitNet, softmax: no cropping,
centring, background work, error handling or charts. `make bench` archives it with the
same weights and serving settings as Digit Lens and runs it on its own ports.
"""
import io

import numpy as np
import torch
from PIL import Image
from ts.torch_handler.base_handler import BaseHandler


class FloorHandler(BaseHandler):
    def initialize(self, context):
        section = context.model_yaml_config["handler"]     # the same model description Digit Lens reads
        self.mean, self.std, self.side = section["mean"], section["std"], section["input_size"]
        if section.get("threads"):
            torch.set_num_threads(section["threads"])
        super().initialize(context)

    def preprocess(self, requests):
        images = []
        for row in requests:
            image = Image.open(io.BytesIO(row.get("data") or row.get("body"))).convert("L").resize((self.side, self.side))
            images.append((np.asarray(image, np.float32) / 255 - self.mean) / self.std)
        return torch.from_numpy(np.stack(images)[:, None]).to(self.device)

    def postprocess(self, logits):
        return torch.softmax(logits, dim=1).tolist()
