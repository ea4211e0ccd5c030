#!/usr/bin/env python3
"""quicseal's SmartNIC SoC: LiteX's simulation SoC (`litex_sim`, with its command line) and a
LiteEth MAC whose transmit side is wired to its receive side.

Frames the firmware sends go through the MAC's real gateware, its transmit slots, padding,
preamble and CRC insertion, and come back through its preamble and CRC checks into its
receive slots: a NIC's datapath end to end, with no tap device and no root. The PHY is only
the wire: one byte a clock, in the system clock domain.

`cargo xtask fpga-test` runs it with the venv's Python (xtask/src/fpga.rs has the options).
"""

from litex.gen import LiteXModule
from litex.soc.interconnect import stream
from litex.tools import litex_sim
from liteeth.common import eth_phy_description
from migen import ClockDomain, ClockSignal, ResetSignal


class LoopbackPHY(LiteXModule):
    """A PHY whose transmit stream is its receive stream."""

    dw = 8

    def __init__(self):
        self.sink = stream.Endpoint(eth_phy_description(self.dw))
        self.source = stream.Endpoint(eth_phy_description(self.dw))
        self.cd_eth_tx = ClockDomain()
        self.cd_eth_rx = ClockDomain()
        self.comb += [
            self.cd_eth_tx.clk.eq(ClockSignal("sys")),
            self.cd_eth_tx.rst.eq(ResetSignal("sys")),
            self.cd_eth_rx.clk.eq(ClockSignal("sys")),
            self.cd_eth_rx.rst.eq(ResetSignal("sys")),
            self.sink.connect(self.source),
        ]


class QuicsealNicSoC(litex_sim.SimSoC):
    """`litex_sim`'s SoC with the looped-back MAC (registers `ethmac_*`, slots in the
    `ethmac` memory region: two receive slots, then two transmit slots)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ethphy = LoopbackPHY()
        self.add_ethernet(phy=self.ethphy, with_timing_constraints=False)


if __name__ == "__main__":
    litex_sim.SimSoC = QuicsealNicSoC
    litex_sim.main()
