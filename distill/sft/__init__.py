"""Branch-phase SFT: chat-template loss masks, padding-free packing, a compact FSDP-ready trainer."""
