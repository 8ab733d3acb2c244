"""cpmdesk: offline, private chat for Intel AI PCs (MiniCPM4 / MiniCPM4.1 on OpenVINO)."""

__version__ = "0.1.0"
