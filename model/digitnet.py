"""DigitNet: a small convolutional network for 28x28 greyscale images.

Each convolution stage is a named module (``conv1`` ... ``conv5``) whose output,
after batch norm and ReLU, is what the handler hooks to show activation maps.
"""
import torch
from torch import nn


def conv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DigitNet(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.conv1 = conv_stage(1, width)               # 28x28
        self.conv2 = conv_stage(width, width)           # 28x28 -> pool 14x14
        self.conv3 = conv_stage(width, 2 * width)       # 14x14
        self.conv4 = conv_stage(2 * width, 2 * width)   # 14x14 -> pool 7x7
        self.conv5 = conv_stage(2 * width, 4 * width)   # 7x7 -> 3x3 average
        self.pool = nn.MaxPool2d(2)
        # A coarse 3x3 grid rather than one global average keeps where features are:
        # a loop at the top makes a 9, the same loop at the bottom a 6.
        self.head_pool = nn.AdaptiveAvgPool2d(3)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * width * 9, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv2(self.conv1(x)))
        x = self.pool(self.conv4(self.conv3(x)))
        return self.classifier(self.head_pool(self.conv5(x)))
