"""The host link: UART PHY, framing with a CRC, and the bus master that carries frames
to the processor's memory map (``docs/link.md``)."""
