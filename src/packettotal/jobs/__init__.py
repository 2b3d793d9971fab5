"""Jobs: in-process worker pool (local.py) running PacketTotal.analyse."""
