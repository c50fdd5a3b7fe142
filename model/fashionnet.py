"""FashionNet: a VGG-style network for 28x28 greyscale product photos (Fashion-MNIST).

Garments differ in texture and outline rather than in where a stroke sits, so three
pairs of convolutions end in one global average, not DigitNet's 3x3 grid. Each
convolution stage (``conv1`` ... ``conv6``) is a named module the handler can hook.
"""
import torch
from torch import nn


def conv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FashionNet(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.conv1 = conv_stage(1, width)               # 28x28
        self.conv2 = conv_stage(width, width)           # 28x28 -> pool 14x14
        self.conv3 = conv_stage(width, 2 * width)       # 14x14
        self.conv4 = conv_stage(2 * width, 2 * width)   # 14x14 -> pool 7x7
        self.conv5 = conv_stage(2 * width, 4 * width)   # 7x7
        self.conv6 = conv_stage(4 * width, 4 * width)   # 7x7 -> global average
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                        nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv2(self.conv1(x)))
        x = self.pool(self.conv4(self.conv3(x)))
        return self.classifier(self.conv6(self.conv5(x)))
